from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from sglang.srt.sampling.penaltylib.frequency_penalty import BatchedFrequencyPenalizer
from sglang.srt.sampling.penaltylib.orchestrator import BatchedPenalizerOrchestrator

if TYPE_CHECKING:
    from sglang.srt.managers.schedule_batch import ScheduleBatch


@dataclasses.dataclass
class SamplingBatchInfo:
    vocab_size: int
    # Penalizer
    penalizer_orchestrator: BatchedPenalizerOrchestrator = None

    @classmethod
    def from_schedule_batch(cls, batch: ScheduleBatch, vocab_size: int):
        # Temperature / top-p / top-k tensors are cut.
        ret = cls(vocab_size=vocab_size)
        ret.penalizer_orchestrator = BatchedPenalizerOrchestrator(
            vocab_size=vocab_size,
            batch=batch,
            penalizers={BatchedFrequencyPenalizer},
        )
        return ret
