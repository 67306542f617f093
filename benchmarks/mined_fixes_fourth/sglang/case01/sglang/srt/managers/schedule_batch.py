from __future__ import annotations

import dataclasses
from typing import List, NamedTuple, Optional

import torch

from sglang.srt.model_executor.forward_batch_info import ForwardMode
from sglang.srt.runtime_context import get_server_args


class Req:
    def __init__(self, rid: str, origin_input_ids: List[int]):
        self.rid = rid
        self.origin_input_ids = origin_input_ids
        self.prefix_indices: List[int] = []
        self.extend_input_len = len(origin_input_ids)
        # Device rows of the HybridReqToTokenPool's ping-pong track buffer.
        self.mamba_ping_pong_track_buffer: Optional[torch.Tensor] = None
        self.mamba_next_track_idx: Optional[int] = None


class _MambaRadixCacheV2TrackEntry(NamedTuple):
    track_mask: bool
    track_index: int
    track_seqlen: int


@dataclasses.dataclass
class ModelWorkerBatch:
    forward_mode: ForwardMode
    input_ids: torch.Tensor
    req_pool_indices: torch.Tensor
    seq_lens: torch.Tensor
    extend_num_tokens: Optional[int]
    extend_seq_lens: Optional[List[int]]
    extend_prefix_lens: Optional[List[int]]
    mamba_track_indices: Optional[torch.Tensor] = None
    mamba_track_mask: Optional[torch.Tensor] = None  # shape: [b], bool
    mamba_track_seqlens: Optional[torch.Tensor] = None


@dataclasses.dataclass
class ScheduleBatch:
    reqs: List[Req]
    forward_mode: ForwardMode = None
    device: str = "cuda"
    input_ids: Optional[torch.Tensor] = None
    req_pool_indices: Optional[torch.Tensor] = None
    seq_lens: Optional[torch.Tensor] = None
    prefix_lens: Optional[List[int]] = None
    extend_lens: Optional[List[int]] = None
    extend_num_tokens: Optional[int] = None
    mamba_track_indices: Optional[torch.Tensor] = None
    mamba_track_mask: torch.Tensor = None  # shape: [b], bool
    mamba_track_seqlens: Optional[torch.Tensor] = None

    @classmethod
    def init_new(cls, reqs: List[Req], req_to_token_pool):
        return cls(reqs=reqs, device=req_to_token_pool.device)

    def prepare_for_extend(self):
        self.forward_mode = ForwardMode.EXTEND
        server_args = get_server_args()
        reqs = self.reqs
        self.prefix_lens = [len(r.prefix_indices) for r in reqs]
        self.extend_lens = [r.extend_input_len for r in reqs]
        self.extend_num_tokens = sum(self.extend_lens)

        mamba_track_mask_cpu = []
        mamba_track_indices_cpu = []
        mamba_track_seqlens_cpu = []
        for req in reqs:
            if server_args.enable_mamba_extra_buffer():
                track_entry = self._mamba_radix_cache_v2_req_prepare_for_extend(req)
                mamba_track_mask_cpu.append(track_entry.track_mask)
                mamba_track_indices_cpu.append(track_entry.track_index)
                mamba_track_seqlens_cpu.append(track_entry.track_seqlen)

        if server_args.enable_mamba_extra_buffer():
            self.mamba_track_indices = torch.tensor(
                mamba_track_indices_cpu,
                dtype=torch.int64,
                device=self.device,
            )
            self.mamba_track_mask = torch.tensor(
                mamba_track_mask_cpu,
                dtype=torch.bool,
                device=self.device,
            )
            self.mamba_track_seqlens = torch.tensor(
                mamba_track_seqlens_cpu,
                dtype=torch.int64,
                device=self.device,
            )

    def _mamba_radix_cache_v2_req_prepare_for_extend(
        self,
        req: Req,
    ) -> _MambaRadixCacheV2TrackEntry:
        server_args = get_server_args()
        mamba_cache_chunk_size = server_args.mamba_cache_chunk_size

        mask = req.extend_input_len >= mamba_cache_chunk_size
        track_index = req.mamba_ping_pong_track_buffer[req.mamba_next_track_idx].item()
        mamba_track_seqlen = -1
        if mask:
            mamba_track_seqlen = len(req.prefix_indices) + req.extend_input_len
        return _MambaRadixCacheV2TrackEntry(mask, track_index, mamba_track_seqlen)

    def get_model_worker_batch(self) -> ModelWorkerBatch:
        return ModelWorkerBatch(
            forward_mode=self.forward_mode,
            input_ids=self.input_ids,
            req_pool_indices=self.req_pool_indices,
            seq_lens=self.seq_lens,
            extend_num_tokens=self.extend_num_tokens,
            extend_seq_lens=self.extend_lens,
            extend_prefix_lens=self.prefix_lens,
            mamba_track_indices=self.mamba_track_indices,
            mamba_track_mask=self.mamba_track_mask,
            mamba_track_seqlens=self.mamba_track_seqlens,
        )
