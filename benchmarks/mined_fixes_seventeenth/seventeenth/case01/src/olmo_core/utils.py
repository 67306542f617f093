import dataclasses
import gc
import logging
import os
import socket
import sys
import time
import uuid
import warnings
from datetime import datetime
from itertools import cycle, islice
from queue import Queue
from threading import Thread
from typing import Any, Callable, Dict, List, Optional, TypeVar, Union

import rich
import torch
from rich.console import Console, ConsoleRenderable
from rich.highlighter import NullHighlighter
from rich.text import Text
from rich.traceback import Traceback

from .config import StrEnum
from .exceptions import OLMoCLIError, OLMoEnvironmentError, OLMoError, OLMoThreadError

OLMO_NUM_THREADS_ENV_VAR = "OLMO_NUM_THREADS"
LOG_FILTER_TYPE_ENV_VAR = "LOG_FILTER_TYPE"


_log_extra_fields: Dict[str, Any] = {}
_LOGGING_CONFIGURED: bool = False
log = logging.getLogger(__name__)


# (benchmark cut: generate_uuid, get_default_thread_count, wait_for, apply_to_tensors)


T = TypeVar("T")


def move_to_device(o: T, device: torch.device, non_blocking: Optional[bool] = None) -> T:
    """
    Move a tensor or container of tensors to the given device.

    :param o: The object to move.
    :param device: The device to move to.
    """
    if non_blocking is None:
        non_blocking = device.type != "cpu"
    if isinstance(o, torch.Tensor):
        return o.to(device, non_blocking=non_blocking)  # type: ignore[return-value]
    elif isinstance(o, dict):
        return {k: move_to_device(v, device) for k, v in o.items()}  # type: ignore[return-value]
    elif isinstance(o, list):
        return [move_to_device(x, device) for x in o]  # type: ignore[return-value]
    elif isinstance(o, tuple):
        return tuple((move_to_device(x, device) for x in o))  # type: ignore[return-value]
    else:
        return o


def get_default_device() -> torch.device:
    """
    Get the default device.
    """
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.device("cuda")
    else:
        return torch.device("cpu")


# (benchmark cut: seed_all, same_storage, gc_cuda, has_flash_attn, set_env_var, LogFilterType, log_extra_field, setup_logging, excepthook, install_excepthook, filter_warnings, set_env_variables, prepare_cli_environment, _RichHandler, threaded_generator, roundrobin, powers_of_2, capped_powers_of_2, format_float, flatten_dict)
