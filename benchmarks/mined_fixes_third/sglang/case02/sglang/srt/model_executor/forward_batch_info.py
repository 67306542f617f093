from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, auto
from typing import TYPE_CHECKING, List, Optional

import torch

from sglang.srt.managers.schedule_batch import ModelWorkerBatch, MultimodalInputs

if TYPE_CHECKING:
    from sglang.srt.model_executor.model_runner import ModelRunner


class ForwardMode(IntEnum):
    EXTEND = auto()
    DECODE = auto()
    TARGET_VERIFY = auto()

    def is_decode(self):
        return self == ForwardMode.DECODE

    def is_target_verify(self):
        return self == ForwardMode.TARGET_VERIFY


@dataclass
class ForwardBatch:
    forward_mode: ForwardMode
    batch_size: int
    input_ids: torch.Tensor
    seq_lens: torch.Tensor
    positions: torch.Tensor = None
    mm_inputs: Optional[List[MultimodalInputs]] = None
    extend_prefix_lens_cpu: Optional[List[int]] = None
    extend_seq_lens_cpu: Optional[List[int]] = None

    @classmethod
    def init_new(
        cls,
        batch: ModelWorkerBatch,
        model_runner: ModelRunner,
    ):
        ret = cls(
            forward_mode=batch.forward_mode,
            batch_size=len(batch.seq_lens),
            input_ids=batch.input_ids,
            seq_lens=batch.seq_lens,
            mm_inputs=batch.multimodal_inputs,
        )
        ret.extend_prefix_lens_cpu = batch.extend_prefix_lens
        ret.extend_seq_lens_cpu = batch.extend_seq_lens
        return ret

    def contains_mm_inputs(self) -> bool:
        if self.mm_inputs is None:
            return False
        return any(mm_input is not None for mm_input in self.mm_inputs)
