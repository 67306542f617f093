# Copyright (c) ModelScope Contributors. All rights reserved.
import gc
import hashlib
import numpy as np
import os
import pickle
import time
import torch
import torch.distributed as dist
import torch.nn.functional as F
import uuid
from contextlib import contextmanager
from datasets.utils.filelock import FileLock
from datetime import timedelta
from modelscope.hub.utils.utils import get_cache_dir
from transformers.utils import is_torch_cuda_available, is_torch_mps_available, is_torch_npu_available
from typing import Any, Mapping, Optional, Union

from .env import get_dist_setting, get_node_setting, is_dist, is_local_master, is_master, is_mp


# (benchmark cut: nanstd, _find_local_mac, synchronize, time_synchronize)


_DISABLE_USE_BARRIER = False


# (benchmark cut: disable_safe_ddp_context_use_barrier, safe_ddp_context, get_device)


def get_current_device():
    if is_torch_npu_available():
        current_device = torch.npu.current_device()
    elif is_torch_cuda_available():
        current_device = torch.cuda.current_device()
    elif is_torch_mps_available():
        current_device = 'mps'
    else:
        current_device = 'cpu'
    return current_device


# (benchmark cut: get_torch_device, set_device, get_device_count, is_torch_rocm, get_physical_device_count, empty_cache, ipc_collect, gc_collect, get_last_valid_indices, Serializer, set_default_ddp_config, init_process_group, check_shared_disk, to_float_dtype)


def to_device(data: Any, device: Union[str, torch.device, int], non_blocking: bool = False) -> Any:
    """Move inputs to a device"""
    if isinstance(data, Mapping):
        return type(data)({k: to_device(v, device, non_blocking) for k, v in data.items()})
    elif isinstance(data, (tuple, list)):
        return type(data)(to_device(v, device, non_blocking) for v in data)
    elif isinstance(data, torch.Tensor):
        return data.to(device=device, non_blocking=non_blocking)
    else:
        return data


# (benchmark cut: get_generative_reranker_logits, get_max_reserved_memory)
