import dataclasses
from typing import Optional

import torch

from sglang.srt.sampling.penaltylib import BatchedPenalizerOrchestrator


@dataclasses.dataclass
class SamplingBatchInfo:
    temperatures: torch.Tensor
    is_all_greedy: bool
    vocab_size: int
    penalizer_orchestrator: Optional[BatchedPenalizerOrchestrator] = None
    device: str = "cuda"
