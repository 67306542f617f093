import logging
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

from sglang.srt.model_executor.forward_batch_info import CaptureHiddenMode
from sglang.srt.speculative.eagle_info_v2 import (
    EagleDraftInputV2Mixin,
    EagleVerifyInputV2Mixin,
)
from sglang.srt.speculative.spec_info import SpecInput, SpecInputType

logger = logging.getLogger(__name__)

# (benchmark cut: EagleVerifyInput, other imports)


@dataclass
class EagleDraftInput(SpecInput, EagleDraftInputV2Mixin):
    # For idle stubs use `create_idle_input`, not the bare ctor: `filter_batch`
    # / `merge_batch` slice / cat `topk_p` / `topk_index` / `hidden_states` /
    # `bonus_tokens` unconditionally.

    # shape: (b, topk)
    topk_p: torch.Tensor = None
    topk_index: torch.Tensor = None
    # shape: (b, hidden_size) - one hidden per req, consumed by `draft` forward.
    # None when the spec algorithm's draft doesn't read hidden_states
    # (e.g., STANDALONE — vanilla LLM draft).
    hidden_states: Optional[torch.Tensor] = None
    capture_hidden_mode: CaptureHiddenMode = CaptureHiddenMode.FULL

    # Per-req bonus token (the "+1" target prediction at end of each accept
    # chain). Written by `EagleDraftExtendInput.prepare_extend_after_decode`;
    # the worker copies it here for next iter's draft.
    bonus_tokens: torch.Tensor = None

    # (benchmark cut: kv_indptr / kv_indices, per-req token counts, V2 buffers)

    def __post_init__(self):
        super().__init__(SpecInputType.EAGLE_DRAFT)

    # (benchmark cut: create_idle_input, filter_batch, merge_batch, ...)
