# (benchmark cut: adam, adamw, config, scheduler re-exports)
from .lion import SkipStepLion
from .skip_step_optimizer import SkipStepOptimizer

__all__ = [
    "SkipStepOptimizer",
    "SkipStepLion",
]
