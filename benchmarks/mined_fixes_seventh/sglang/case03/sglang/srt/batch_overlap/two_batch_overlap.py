from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import torch

from sglang.srt.layers.moe import (
    get_deepep_mode,
    get_moe_a2a_backend,
    is_tbo_enabled,
)
from sglang.srt.managers.schedule_batch import ScheduleBatch
from sglang.srt.model_executor.forward_batch_info import ForwardMode

logger = logging.getLogger(__name__)


def get_token_num_per_seq(forward_mode, spec_info=None):
    # (benchmark cut: body)
    return 1


def compute_split_seq_index(forward_mode, num_tokens, extend_lens, token_num_per_seq):
    # (benchmark cut: body)
    return None


# (benchmark cut: TBO split helpers and operations)


class TboDPAttentionPreparer:
    def prepare_all_gather(
        self,
        local_batch: ScheduleBatch,
    ):

        deepep_mode = get_deepep_mode()
        enable_a2a_moe = not get_moe_a2a_backend().is_none()
        enable_two_batch_overlap = is_tbo_enabled()

        self.enable_two_batch_overlap = enable_two_batch_overlap

        # Short-circuit when TBO is off: prepare_mlp_sync_batch_raw invokes
        # this preparer unconditionally for the forward_mode all-gather, but
        # compute_split_seq_index is TBO-only and undefined for some modes
        # (e.g. MIXED from enable_mixed_chunk).
        if not enable_two_batch_overlap:
            self.local_tbo_split_seq_index = None
            return False, self._compute_local_forward_mode(local_batch)

        if local_batch is not None:
            token_num_per_seq = get_token_num_per_seq(
                forward_mode=local_batch.forward_mode, spec_info=local_batch.spec_info
            )

            if (
                local_batch.forward_mode.is_target_verify()
                or local_batch.forward_mode.is_decode()
            ):
                num_tokens = local_batch.batch_size() * token_num_per_seq
            elif local_batch.forward_mode.is_prebuilt():
                num_tokens = 0
            else:
                num_tokens = local_batch.extend_num_tokens
            self.local_tbo_split_seq_index = compute_split_seq_index(
                forward_mode=local_batch.forward_mode,
                num_tokens=num_tokens,
                extend_lens=local_batch.extend_lens,
                token_num_per_seq=token_num_per_seq,
            )
            resolved_deepep_mode = deepep_mode.resolve(local_batch.is_extend_in_batch)
            local_can_run_tbo = (self.local_tbo_split_seq_index is not None) and not (
                (
                    local_batch.forward_mode.is_extend()
                    and not local_batch.forward_mode.is_target_verify()
                )
                and enable_a2a_moe
                and (resolved_deepep_mode.is_low_latency())
            )
        else:
            self.local_tbo_split_seq_index = 0
            local_can_run_tbo = True

        local_forward_mode = self._compute_local_forward_mode(local_batch)

        return local_can_run_tbo, local_forward_mode

    def compute_output(self, partial_global_info):
        # Perform only one Device-to-Host (D2H) memory copy
        cpu_data = partial_global_info[:, :2].cpu()  # SYNC (pre-fix, #34338)
        local_can_run_tbo_aggregated = min(cpu_data[:, 0].tolist())
        forward_modes = cpu_data[:, 1].tolist()

        global_forward_mode, forward_mode_agree = self._compute_global_forward_mode(
            forward_modes
        )

        can_run_tbo = (
            self.enable_two_batch_overlap
            and local_can_run_tbo_aggregated
            and forward_mode_agree
        )

        tbo_split_seq_index = self.local_tbo_split_seq_index if can_run_tbo else None
        global_forward_mode = global_forward_mode if can_run_tbo else None
        return tbo_split_seq_index, global_forward_mode

    @staticmethod
    def _compute_local_forward_mode(local_batch):
        return (
            local_batch.forward_mode if local_batch is not None else ForwardMode.IDLE
        ).value

    @staticmethod
    def _compute_global_forward_mode(forward_modes):
        forward_modes_excluding_idle_and_prebuilt = [
            x
            for x in forward_modes
            if x != ForwardMode.IDLE.value and x != ForwardMode.PREBUILT.value
        ]

        if not forward_modes_excluding_idle_and_prebuilt:
            return ForwardMode.IDLE, False

        forward_mode_agree = TboDPAttentionPreparer._is_all_same(
            forward_modes_excluding_idle_and_prebuilt
        )

        global_forward_mode = (
            ForwardMode(forward_modes_excluding_idle_and_prebuilt[0])
            if forward_mode_agree
            else None
        )
        return global_forward_mode, forward_mode_agree

    @staticmethod
    def _is_all_same(x):
        return all(value == x[0] for value in x)
