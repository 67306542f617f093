# (benchmark cut: module docstring, prepare_training_environment, teardown_training_environment, other re-exports)
from .trainer import Trainer

__all__ = ["Trainer"]
