# (benchmark cut: license header and module docstring)
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from enum import IntEnum, auto
from functools import total_ordering
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple, Union

import torch

# (benchmark cut: other imports)

if TYPE_CHECKING:
    from sglang.srt.layers.dcp.metadata import DecodeContextParallelMetadata
    from sglang.srt.layers.logits_processor import LogitsProcessorOutput
    from sglang.srt.layers.utils.cp_utils import ContextParallelMetadata
    from sglang.srt.managers.schedule_batch import MultimodalInputs, ScheduleBatch
    from sglang.srt.model_executor.model_runner import ModelRunner
    from sglang.srt.sampling.sampling_batch_info import SamplingBatchInfo
    from sglang.srt.speculative.spec_info import SpecInput, SpeculativeAlgorithm

# (benchmark cut: ForwardMode, CaptureHiddenMode, helpers)


@dataclass
class ForwardBatch(ForwardBatchDeepSeekMHAMixin):
    """Store all inputs of a forward pass."""

    # === Required core inputs (no default; input_ids / req_pool_indices / seq_lens / out_cache_loc are borrowed from ScheduleBatch) ===
    # The forward mode
    forward_mode: ForwardMode
    # The batch size
    batch_size: int
    # The input ids
    input_ids: torch.Tensor
    # The indices of requests in the req_to_token_pool
    req_pool_indices: torch.Tensor
    # The sequence length
    seq_lens: torch.Tensor
    # (benchmark cut: remaining fields and helper methods)

    @classmethod
    def init_new(
        cls,
        batch: ScheduleBatch,
        model_runner: ModelRunner,
    ):
        # Consume one-shot per-forward overrides from SB; reset to defaults so
        # the next forward on the same SB starts clean. See SB field comment
        # for the contract.
        capture_hidden_mode = batch.capture_hidden_mode
        batch.capture_hidden_mode = None
        seq_lens_cpu_cache = batch.seq_lens_cpu_cache
        batch.seq_lens_cpu_cache = None
        return_hidden_states_before_norm = batch.return_hidden_states_before_norm
        batch.return_hidden_states_before_norm = False

        # capture_hidden_mode default: derive from SB.return_hidden_states /
        # spec_info.capture_hidden_mode when caller did not override.
        if capture_hidden_mode is None:
            if batch.return_hidden_states:
                capture_hidden_mode = CaptureHiddenMode.FULL
            elif batch.spec_info is not None:
                capture_hidden_mode = getattr(
                    batch.spec_info, "capture_hidden_mode", CaptureHiddenMode.NULL
                )
            else:
                capture_hidden_mode = CaptureHiddenMode.NULL

        # extend-mode-only fields are None on decode/idle
        if batch.forward_mode.is_decode_or_idle():
            extend_seq_lens = extend_prefix_lens = extend_logprob_start_lens = None
        else:
            extend_seq_lens = batch.extend_lens
            extend_prefix_lens = batch.prefix_lens
            extend_logprob_start_lens = batch.extend_logprob_start_lens

        # Mirror the grammars-population behavior previously done in
        # ScheduleBatch.get_model_worker_batch.
        if batch.sampling_info is not None:
            if batch.has_grammar:
                batch.sampling_info.grammars = [req.grammar for req in batch.reqs]
            else:
                batch.sampling_info.grammars = None

        # ScheduleBatch.sampling_info is already swapped to the forward-only
        # copy by Scheduler.run_batch under overlap mode (see save/restore
        # block there). Use it directly.
        if seq_lens_cpu_cache is not None:
            # Stale-cache guard: shape must match current GPU seq_lens. Mismatch
            # means caller forgot to refresh the override after batch size
            # changed (e.g. filter/merge_batch); using a stale cache would
            # propagate wrong CPU mirror to downstream DP / cudagraph logic.
            assert seq_lens_cpu_cache.shape == batch.seq_lens.shape, (
                f"seq_lens_cpu_cache shape {seq_lens_cpu_cache.shape} != "
                f"seq_lens {batch.seq_lens.shape}; stale override on batch?"
            )
            seq_lens_cpu = seq_lens_cpu_cache
        else:
            seq_lens_cpu = batch.seq_lens_cpu

        if batch.seq_lens_sum is None and seq_lens_cpu is not None:
            batch.seq_lens_sum = int(seq_lens_cpu.sum())

        ret = cls(
            # Required core inputs
            forward_mode=batch.forward_mode,
            batch_size=len(batch.seq_lens),
            input_ids=batch.input_ids,
            req_pool_indices=batch.req_pool_indices,
            seq_lens=batch.seq_lens,
            out_cache_loc=batch.out_cache_loc,
            seq_lens_sum=batch.seq_lens_sum,
            # (benchmark cut: remaining constructor arguments)
        )
        # (benchmark cut: remaining initialisation of ret)
        return ret

    # (benchmark cut: rest of ForwardBatch)
