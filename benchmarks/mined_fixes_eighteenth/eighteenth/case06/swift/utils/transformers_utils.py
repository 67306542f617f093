# Copyright (c) ModelScope Contributors. All rights reserved.
import numpy as np
import re
import torch
import torch.nn as nn
from bisect import bisect_right
from contextlib import contextmanager, nullcontext
from transformers.integrations import is_deepspeed_zero3_enabled
from transformers.trainer_utils import set_seed
from typing import Callable, List, Optional, Tuple

from .logger import get_logger
from .utils import deep_getattr

logger = get_logger()


# (benchmark cut: get_n_params_grads, get_model_parameter_info, find_sub_module, show_layers, freeze_parameters, activate_parameters, find_layers, find_norm, find_embedding, find_all_linears, get_multimodal_target_regex, get_cu_seqlens_from_position_ids, get_position_ids_from_cu_seqlens, seed_worker, unwrap_model_for_generation, disable_deepspeed_zero3, get_modules_to_not_convert)


def get_packed_seq_params(position_ids: torch.Tensor):
    assert position_ids.shape[0] == 1, f'position_ids.shape: {position_ids.shape}'
    position_ids_f = position_ids.flatten()
    indices_q = torch.arange(position_ids_f.shape[0], device=position_ids_f.device, dtype=torch.int32)

    cu_seqlens = torch.cat([
        indices_q[position_ids_f == 0],
        torch.tensor(position_ids_f.shape, device=position_ids_f.device, dtype=torch.int32),
    ])

    max_length = cu_seqlens.diff().max()  # position_ids_f.max() + 1
    return {
        'cu_seq_lens_q': cu_seqlens,
        'cu_seq_lens_k': cu_seqlens,
        'max_length_q': max_length,
        'max_length_k': max_length,
    }
