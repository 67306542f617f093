# (benchmark cut: vLLM logging configuration; a plain logging stand-in)
import logging


def init_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
