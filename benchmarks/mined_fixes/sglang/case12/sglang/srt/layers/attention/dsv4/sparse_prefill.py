from dataclasses import dataclass
from typing import Optional

import torch
import triton
import triton.language as tl

from sglang.srt.model_executor.forward_batch_info import ForwardBatch


def build_swa_token_ids(
    seq_lens: torch.Tensor,
    extend_seq_lens: torch.Tensor,
    req_pool_indices: torch.Tensor,
    req_to_token: torch.Tensor,
    full_to_swa: torch.Tensor,
    swa_window: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gather the physical SWA-cache token ids every query of a prefill chunk needs.

    Returns:
        swa_token_ids: (total_swa,) int32, flat physical SWA-cache token IDs.
        swa_first_pos: (num_reqs,) int32, first seq position covered per req.
        swa_gather_lens: (num_reqs,) int32, gather length per request.
        swa_offsets: (num_reqs+1,) int32, exclusive cumsum of swa_gather_lens.
    """
    assert seq_lens.dtype == torch.int32
    assert extend_seq_lens.dtype == torch.int32
    assert req_pool_indices.dtype == torch.int32
    assert req_to_token.dtype == torch.int32
    assert full_to_swa.dtype == torch.int64

    num_reqs = seq_lens.shape[0]
    device = seq_lens.device

    swa_gather_lens = torch.minimum(seq_lens, extend_seq_lens + (swa_window - 1)).to(
        torch.int32
    )
    swa_first_pos = (seq_lens - swa_gather_lens).to(torch.int32)
    swa_offsets = torch.zeros(num_reqs + 1, dtype=torch.int32, device=device)
    swa_offsets[1:] = torch.cumsum(swa_gather_lens, dim=0).to(torch.int32)
    total_swa = int(swa_offsets[-1].item())  # one CPU sync per chunk

    swa_token_ids = torch.empty(total_swa, dtype=torch.int32, device=device)
    if total_swa == 0:
        return swa_token_ids, swa_first_pos, swa_gather_lens, swa_offsets

    NUM_WORKERS = 128
    _build_swa_token_ids_kernel[(num_reqs, NUM_WORKERS)](
        swa_token_ids,
        swa_first_pos,
        swa_gather_lens,
        swa_offsets,
        req_pool_indices,
        req_to_token,
        req_to_token.stride(0),
        full_to_swa,
    )
    return swa_token_ids, swa_first_pos, swa_gather_lens, swa_offsets


@triton.jit
def _build_swa_token_ids_kernel(
    out_ptr,
    swa_first_pos_ptr,
    swa_gather_lens_ptr,
    swa_offsets_ptr,
    req_pool_indices_ptr,
    req_to_token_ptr,
    req_to_token_stride,
    full_to_swa_ptr,
):
    req_idx = tl.program_id(0)
    first_pos = tl.load(swa_first_pos_ptr + req_idx)
    gather_len = tl.load(swa_gather_lens_ptr + req_idx)
    out_offset = tl.load(swa_offsets_ptr + req_idx)


@dataclass
class SparsePrefillChunkCache:
    """Chunk-invariant scaffolding for ``_forward_prefill_sparse``.

    The fields here depend only on the prefill chunk (forward_batch,
    req_to_token, full_to_swa_index_mapping) and not on the per-layer k_cache.
    Reused across every layer in the chunk.
    """

    swa_token_ids: torch.Tensor
    swa_first_pos: torch.Tensor
    swa_gather_lens: torch.Tensor
    swa_offsets: torch.Tensor

    @classmethod
    def build(
        cls,
        forward_batch: ForwardBatch,
        req_to_token: torch.Tensor,
        full_to_swa: torch.Tensor,
        swa_window: int,
    ) -> "SparsePrefillChunkCache":
        seq_lens = forward_batch.seq_lens.to(torch.int32)
        extend_seq_lens = forward_batch.extend_seq_lens.to(torch.int32)
        req_pool_indices = forward_batch.req_pool_indices.to(torch.int32)
        swa_token_ids, swa_first_pos, swa_gather_lens, swa_offsets = build_swa_token_ids(
            seq_lens,
            extend_seq_lens,
            req_pool_indices,
            req_to_token,
            full_to_swa,
            swa_window,
        )
        return cls(swa_token_ids, swa_first_pos, swa_gather_lens, swa_offsets)
