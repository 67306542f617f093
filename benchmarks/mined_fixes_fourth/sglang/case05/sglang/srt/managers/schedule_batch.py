from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, List, Optional

import torch

from sglang.srt.mem_cache.allocation import alloc_for_decode
from sglang.srt.mem_cache.memory_pool import ReqToTokenPool
from sglang.srt.model_executor.forward_batch_info import ForwardMode
from sglang.srt.sampling.sampling_batch_info import SamplingBatchInfo
from sglang.srt.speculative.spec_info import SpeculativeAlgorithm

if TYPE_CHECKING:
    from sglang.srt.speculative.eagle_info import EagleDraftInput


@dataclasses.dataclass
class SamplingParams:
    frequency_penalty: float = 0.0


class Req:
    def __init__(self, rid: str, origin_input_ids: List[int], sampling_params=None):
        self.rid = rid
        self.origin_input_ids = origin_input_ids
        self.output_ids: List[int] = []
        self.sampling_params = sampling_params or SamplingParams()
        self.decode_batch_idx = 0
        self.kv_committed_len = len(origin_input_ids)
        self.kv_allocated_len = len(origin_input_ids)


@dataclasses.dataclass
class ScheduleBatch:
    """Store all information of a batch on the scheduler."""

    reqs: List[Req]
    req_to_token_pool: ReqToTokenPool = None
    token_to_kv_pool_allocator: object = None
    tree_cache: object = None
    forward_mode: ForwardMode = None
    enable_overlap: bool = False
    # Sampling info
    sampling_info: SamplingBatchInfo = None
    # Device
    device: str = "cuda"

    # Speculative decoding
    spec_algorithm: SpeculativeAlgorithm = None
    spec_info: object = None

    input_ids: Optional[torch.Tensor] = None
    input_embeds: Optional[torch.Tensor] = None
    req_pool_indices: Optional[torch.Tensor] = None
    seq_lens: Optional[torch.Tensor] = None
    seq_lens_cpu: Optional[torch.Tensor] = None
    orig_seq_lens: Optional[torch.Tensor] = None
    seq_lens_sum: Optional[int] = None
    out_cache_loc: Optional[torch.Tensor] = None

    @classmethod
    def init_new(
        cls,
        reqs: List[Req],
        req_to_token_pool: ReqToTokenPool,
        token_to_kv_pool_allocator,
        tree_cache,
        enable_overlap: bool,
        spec_algorithm: SpeculativeAlgorithm,
    ):
        return cls(
            reqs=reqs,
            req_to_token_pool=req_to_token_pool,
            token_to_kv_pool_allocator=token_to_kv_pool_allocator,
            tree_cache=tree_cache,
            enable_overlap=enable_overlap,
            device=req_to_token_pool.device,
            spec_algorithm=spec_algorithm,
        )

    def batch_size(self):
        return len(self.reqs)

    def prepare_for_decode(self):
        self.forward_mode = ForwardMode.DECODE
        bs = len(self.reqs)
        # Decode embeds the last output token via embed_tokens; clear the stale
        # prefill-time tensor so it doesn't leak into ForwardBatch.
        self.input_embeds = None

        if not self.spec_algorithm.is_none():
            # Spec decoding: the draft input owns decode preparation
            # (allocation, pre-claim, seq-lens bookkeeping).
            draft_input: EagleDraftInput = self.spec_info
            draft_input.prepare_for_decode(self)
            return

        if self.sampling_info.penalizer_orchestrator.is_required:
            # Under overlap batch.input_ids is just a placeholder here -- the
            # real token is relayed via future_map and resolved at forward
            # entry. So take the last output token from Req directly
            # (origin_input_ids[-1] on the first decode, before any output).
            last_tokens = [
                req.output_ids[-1] if len(req.output_ids) else req.origin_input_ids[-1]
                for req in self.reqs
            ]
            # Non-blocking H2D so this per-step copy doesn't sync behind the forward.
            latest_output_ids = torch.tensor(last_tokens, dtype=torch.int64).to(
                self.device, non_blocking=True
            )
            self.sampling_info.penalizer_orchestrator.cumulate_output_tokens(
                latest_output_ids
            )

        # input_ids is set at end of previous run_batch (placeholder for
        # overlap; next_token_ids cast for non-overlap).

        # Allocate memory
        self.out_cache_loc = alloc_for_decode(self, token_per_req=1)

        # Update req-level memory management fields
        for req in self.reqs:
            req.decode_batch_idx += 1
            req.kv_committed_len += 1
            req.kv_allocated_len += 1

        if self.enable_overlap:
            # New-tensor avoids racing model_worker_batch refs queued for
            # overlap forward.
            self.seq_lens = self.seq_lens + 1
            self.seq_lens_cpu = self.seq_lens_cpu + 1
            self.orig_seq_lens = self.orig_seq_lens + 1
        else:
            self.seq_lens.add_(1)
            self.seq_lens_cpu.add_(1)
            self.orig_seq_lens.add_(1)
        # Sum is recomputed lazily by ForwardBatch.init_new.
        self.seq_lens_sum = None
