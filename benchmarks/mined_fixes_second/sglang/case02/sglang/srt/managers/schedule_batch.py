from __future__ import annotations

import dataclasses
from typing import List

from sglang.srt.sampling.sampling_batch_info import SamplingBatchInfo


@dataclasses.dataclass
class ScheduleBatch:
    reqs: List
    vocab_size: int = 32000
    device: str = "cuda"
    sampling_info: SamplingBatchInfo = None

    def prepare_for_extend(self):
        # Build sampling info
        self.sampling_info = SamplingBatchInfo.from_schedule_batch(
            self,
            self.vocab_size,
        )
