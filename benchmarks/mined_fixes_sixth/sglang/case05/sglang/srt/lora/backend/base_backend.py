from typing import Tuple, Union

import torch

from sglang.srt.lora.utils import LoRABatchInfo


def get_fuse_output_add_from_name(name: str) -> bool:
    mapping = {
        "triton": True,
        "flashinfer": False,
    }
    return mapping.get(name, False)


def get_fuse_stacked_lora_b_from_name(name: str) -> bool:
    mapping = {
        "triton": True,
        "flashinfer": False,
    }
    return mapping.get(name, False)


class BaseLoRABackend:
    """Base class for different Lora backends.
       Each backend has its own implementation of Lora kernels.

    Args:
        name: name of backend
        batch_info: information of current batch for use
        fuse_output_add: if set to True, the output buffer for storing result will be passed in when doing lora_b forward,
                                 and the operation of adding will be fused into kernel
    """

    def __init__(self, name: str, batch_info: LoRABatchInfo = None):
        self.name = name
        self.batch_info = batch_info
        self.fuse_output_add = get_fuse_output_add_from_name(name)
        self.fuse_stacked_lora_b = get_fuse_stacked_lora_b_from_name(name)


    # (benchmark cut: the sgemm / qkv / gate_up entry points implemented by the triton backend)

    def set_batch_info(self, batch_info: LoRABatchInfo):
        self.batch_info = batch_info


def get_backend_from_name(name: str) -> BaseLoRABackend:
    # (benchmark cut: returns TritonLoRABackend / FlashInferLoRABackend)
    return BaseLoRABackend
