from .compile import maybe_compile
from .config import Config
from .device import get_device, get_torch_device_module
from .dist_utils import is_local_rank0
from .dtensor import cal_total_norm, group_tensors_by_device_mesh_and_placements, is_evenly_distributed
from .enum_helper import StrEnum
from .exception_helper import ParallelConfigException
from .init_weight import default_init_weights, init_params
from .loader import HFCheckpointLoader
from .logger import get_logger, log_format
from .misc import (
    XTUNER_DETERMINISTIC,
    FunctionEnum,
    SharedMemory,
    clean_param_name,
    get_function_type,
    get_padding_length,
    is_hf_model_path,
    record_git_info,
    set_deterministic,
    trim_memory,
)
from .pad import pad_to_max_length, pad_to_multiple_of
from .profile import profile_time, profile_time_and_memory, timer, timer_logger
from .state import ForwardState
from .type_helper import copy_method_signature, copy_signature, ray_method
from .update_weights_utils import monkey_unpatch_torch_reductions


IGNORE_INDEX = -100

__all__ = [
    "get_logger",
    "SharedMemory",
    "StrEnum",
    "ForwardState",
    "FunctionEnum",
    "HFCheckpointLoader",
    "get_padding_length",
    "get_function_type",
    "pad_to_multiple_of",
    "pad_to_max_length",
    "get_device",
    "get_torch_device_module",
    "maybe_compile",
    "is_evenly_distributed",
    "profile_time_and_memory",
    "timer",
    "timer_logger",
    "ParallelConfigException",
    "log_format",
    "XTUNER_DETERMINISTIC",
    "Config",
    "record_git_info",
    "is_hf_model_path",
    "is_local_rank0",
    "copy_signature",
    "copy_method_signature",
    "init_params",
    "default_init_weights",
    "IGNORE_INDEX",
    "monkey_unpatch_torch_reductions",
    "ray_method",
    "profile_time",
    "clean_param_name",
    "set_deterministic",
    "trim_memory",
    "group_tensors_by_device_mesh_and_placements",
    "cal_total_norm",
]
