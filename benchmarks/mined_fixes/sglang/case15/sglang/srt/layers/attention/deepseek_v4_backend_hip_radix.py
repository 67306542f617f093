from dataclasses import dataclass, field
from typing import Optional

import torch

from sglang.srt.model_executor.forward_batch_info import ForwardBatch


def is_unified_kv_triton() -> bool:
    return True


@dataclass
class UnifiedKvMetadata:
    pf_state_slot: Optional[torch.Tensor] = None
    pf_chunk_start: Optional[torch.Tensor] = None
    pf_cu_q: Optional[torch.Tensor] = None


@dataclass
class DSV4AttnMetadata:
    positions_casual: Optional[torch.Tensor] = None
    unified: Optional[UnifiedKvMetadata] = None


class DeepseekV4HipRadixAttnBackend:
    def __init__(self, model_runner):
        self.device = model_runner.device
        self.forward_metadata: Optional[DSV4AttnMetadata] = None

    def init_forward_metadata(self, forward_batch: ForwardBatch):
        core = DSV4AttnMetadata(positions_casual=forward_batch.positions)
        if not forward_batch.forward_mode.is_decode_or_idle():
            self._attach_unified_kv_prefill_meta(
                core,
                forward_batch.req_pool_indices,
                forward_batch.seq_lens,
                forward_batch.extend_seq_lens,
            )
        self.forward_metadata = core

    def _attach_unified_kv_prefill_meta(
        self,
        core: DSV4AttnMetadata,
        req_pool_indices: torch.Tensor,
        seq_lens: torch.Tensor,
        extend_seq_lens: torch.Tensor,
    ) -> None:
        if not is_unified_kv_triton():
            return
        device = req_pool_indices.device
        bs = req_pool_indices.shape[0]
        seq_lens = seq_lens.to(torch.int64)
        extend_seq_lens = extend_seq_lens.to(torch.int64)
        # token -> req index (length L = sum(extend_seq_lens))
        bid = torch.repeat_interleave(
            torch.arange(bs, device=device, dtype=torch.int64), extend_seq_lens
        )
        if core.unified is None:
            core.unified = UnifiedKvMetadata()
        core.unified.pf_state_slot = req_pool_indices[bid]
        core.unified.pf_chunk_start = (seq_lens - extend_seq_lens)[bid]
        cu_q_per_req = torch.cumsum(extend_seq_lens, dim=0)
        core.unified.pf_cu_q = cu_q_per_req
