from sglang.srt.sampling.penaltylib.min_new_tokens import BatchedMinNewTokensPenalizer
from sglang.srt.sampling.penaltylib.orchestrator import BatchedPenalizerOrchestrator

__all__ = [
    "BatchedMinNewTokensPenalizer",
    "BatchedPenalizerOrchestrator",
]
