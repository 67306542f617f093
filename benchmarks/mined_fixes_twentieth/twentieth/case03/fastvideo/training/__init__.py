from .distillation_pipeline import DistillationPipeline
from .training_pipeline import TrainingPipeline
from .wan_training_pipeline import WanTrainingPipeline
from .ltx2_training_pipeline import LTX2TrainingPipeline

__all__ = [
    "TrainingPipeline",
    "WanTrainingPipeline",
    "LTX2TrainingPipeline",
    "DistillationPipeline",
]
