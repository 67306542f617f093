# (benchmark cut: real composer/__init__.py re-exports core, loggers and models)
from composer.trainer import Trainer
