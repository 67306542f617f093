from dataclasses import dataclass
from typing import Optional

import torch

from .msa import per_token_valid_blocks, select_blocks_from_maxscore


@dataclass
class MiniMaxM3SparseMetadata:
    qo_lens_cpu: torch.Tensor
    kv_lens_cpu: torch.Tensor
    qo_offset_cpu: Optional[torch.Tensor] = None


class MiniMaxM3SparseAttention:
    def __init__(self, topk: int, block_size: int, init_blocks: int, local_blocks: int):
        self.topk = topk
        self.block_size = block_size
        self.init_blocks = init_blocks
        self.local_blocks = local_blocks

    def _block_scores(self, q: torch.Tensor, k_blocks: torch.Tensor) -> torch.Tensor:
        # [num_kv_heads, n_blocks, total_q]
        scores = torch.einsum("qhd,bhd->hbq", q, k_blocks)
        return scores

    def select_blocks(self, q: torch.Tensor, k_blocks: torch.Tensor, metadata: MiniMaxM3SparseMetadata) -> torch.Tensor:
        max_score_kv = self._block_scores(q, k_blocks)
        n_valid_blocks = per_token_valid_blocks(
            metadata.qo_lens_cpu,
            metadata.kv_lens_cpu,
            metadata.qo_offset_cpu,
            causal=True,
            block_size=self.block_size,
        )
        return select_blocks_from_maxscore(
            max_score_kv,
            topk=self.topk,
            n_valid_blocks=n_valid_blocks,
            init_blocks=self.init_blocks,
            local_blocks=self.local_blocks,
        )
