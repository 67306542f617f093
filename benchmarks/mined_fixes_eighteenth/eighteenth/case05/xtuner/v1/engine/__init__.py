from xtuner.v1.engine.config import EngineConfig

from .train_engine import TrainEngine


__all__ = [
    "TrainEngine",
    "EngineConfig",
]
