import gc
import os
import time
from typing import Any, Callable, Dict, List

import torch
import torch.distributed as dist
from tensordict import TensorDict
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    PretrainedConfig,
    PreTrainedTokenizerFast,
    get_constant_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

from areal.api.alloc_mode import ParallelStrategy
from areal.api.cli_args import TrainEngineConfig
from areal.api.engine_api import TrainEngine
from areal.api.io_struct import FinetuneSpec
from areal.platforms import current_platform
from areal.utils import logging
from areal.utils.data import (
    MicroBatchList,
    amend_position_ids,
    pack_tensor_dict,
    pad_and_stack_tensors_along_first_dim,
    pad_mb_list,
    reorder_list,
    split_padded_tensor_dict_into_mb_list,
    unpack_sequence,
    unsqueeze_mb_list,
)
from areal.utils.fsdp import get_cosine_schedule_with_warmup
from areal.utils.hf_utils import load_hf_processor_and_tokenizer, load_hf_tokenizer
from areal.utils.model import (
    VALID_VISION_MODELS,
    disable_dropout_in_model,
    is_qwen2_vl_model,
    is_qwen3_moe_model,
)
from areal.utils.nccl import NCCL_DEFAULT_TIMEOUT


class BaseHFEngine(TrainEngine):
    def __init__(self, config: TrainEngineConfig):
        self.config = config
        self.optimizer_config = config.optimizer

        self.model: torch.nn.Module
        self.optimizer: torch.optim.Optimizer
        self.tokenizer: PreTrainedTokenizerFast
        self.processor: AutoProcessor | None = None
        # huggingface model config
        self.model_config: PretrainedConfig
        self._version: int = 0

        # initialization
        self.initialized = False
        self.own_global_group = False
        self._parallelism_group: dist.ProcessGroup
        self.mp_group: dist.ProcessGroup
        self.weight_update_group_initialized = False

        self.model_config = AutoConfig.from_pretrained(
            pretrained_model_name_or_path=self.config.path,
            trust_remote_code=True,
        )
        self.is_vision_model = self.model_config.model_type in VALID_VISION_MODELS

        self.world_size = int(os.environ["WORLD_SIZE"])

    # (benchmark cut: set_version, get_version, train, data_parallel_group, data_parallel_rank, data_parallel_world_size, current_data_parallel_head, is_data_parallel_head, context_and_model_parallel_group, parallelism_group)

    def create_process_group(self, parallel_strategy: ParallelStrategy):
        # Required by NCCL weight update group for SGLang
        os.environ["NCCL_CUMEM_ENABLE"] = "0"
        os.environ["NCCL_NVLS_ENABLE"] = "0"
        if not dist.is_initialized():
            # TODO: Handle the condition when WORLD_SIZE and RANK is not set in launcher
            # NOTE: device_id **SHOULD NOT** be passed into init_process_group,
            # otherwise initializing the NCCL weight update group will be wrong!
            dist.init_process_group(
                backend=current_platform.communication_backend,
                timeout=NCCL_DEFAULT_TIMEOUT,
            )
            self.own_global_group = True
        self._parallelism_group = dist.new_group()
        # Each process is its own model parallel group.
        self.mp_group = dist.new_group([dist.get_rank()])

        self.logger = logging.getLogger(f"[HF Engine Rank {dist.get_rank()}]")

    def create_device_model(self):
        current_platform.set_device(int(os.environ["LOCAL_RANK"]))
        self.device = torch.device(int(os.environ["LOCAL_RANK"]))

        dtype = getattr(torch, self.config.dtype)

        if self.is_vision_model:
            if dtype == torch.float16:
                raise ValueError(
                    "Vision models do not support float16 dtype. Please use bfloat16."
                )
            if self.config.init_from_scratch:
                raise ValueError(
                    "Vision models do not support initialization from scratch. Please use a pretrained model."
                )
            self.processor, self.tokenizer = load_hf_processor_and_tokenizer(
                self.config.path
            )

            tik = time.perf_counter()
            with torch.device(current_platform.device_type):
                model = AutoModelForImageTextToText.from_pretrained(
                    pretrained_model_name_or_path=self.config.path,
                    trust_remote_code=True,
                    torch_dtype=dtype,
                    attn_implementation=self.config.attn_impl,
                )
                if self.config.disable_dropout:
                    disable_dropout_in_model(model)
        else:
            self.tokenizer = load_hf_tokenizer(self.config.path)
            tik = time.perf_counter()
            with torch.device(current_platform.device_type):
                if self.config.init_from_scratch:
                    # initialize scratch model from config
                    # NOTE: VLM cannot directly load state dict using this
                    # random initialized model, so otherwise we call
                    # from_pretrained rather than loading weights into this random model.
                    model = AutoModelForCausalLM.from_config(
                        self.model_config,
                        torch_dtype=dtype,
                        attn_implementation=self.config.attn_impl,
                    )
                else:
                    model = AutoModelForCausalLM.from_pretrained(
                        pretrained_model_name_or_path=self.config.path,
                        trust_remote_code=True,
                        torch_dtype=dtype,
                        attn_implementation=self.config.attn_impl,
                    )
                if self.config.disable_dropout:
                    disable_dropout_in_model(model)

        if self.config.gradient_checkpointing:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        self.logger.info(
            f"Model creation and loading time: {time.perf_counter() - tik}"
        )
        self.model = model

    # (benchmark cut: create_optimizer, destroy, save_optimizer_state, load_optimizer_state, step_lr_scheduler)

    def prepare_mb_list(self, input_: TensorDict) -> MicroBatchList:
        assert "attention_mask" in input_ and "input_ids" in input_

        if isinstance(input_, dict):
            input_ = TensorDict(input_, batch_size=[input_["input_ids"].shape[0]])
        if is_qwen2_vl_model(self.model_config.model_type):
            # Create the special t,h,w position IDs for qwen 2.5 VL
            attn_mask = input_["attention_mask"]
            input_ids = input_["input_ids"]
            image_grid_thw = None
            video_grid_thw = None
            if "multi_modal_input" in input_:
                multi_modal_input = input_["multi_modal_input"]
                image_grid_thw_list = [
                    m["image_grid_thw"]
                    for m in multi_modal_input
                    if "image_grid_thw" in m
                ]
                if image_grid_thw_list:
                    image_grid_thw = torch.cat(image_grid_thw_list)
                video_grid_thw_list = [
                    m["video_grid_thw"]
                    for m in multi_modal_input
                    if "video_grid_thw" in m
                ]
                if video_grid_thw_list:
                    video_grid_thw = torch.cat(video_grid_thw_list)

            position_ids, _ = self.model.model.get_rope_index(
                input_ids, image_grid_thw, video_grid_thw, attn_mask
            )
            # [3, bs, seqlen] -> [bs, seqlen, 3]
            position_ids = torch.einsum("ijk->jki", position_ids)
            input_["position_ids"] = position_ids
        else:
            input_ = amend_position_ids(input_)

        mb_list = split_padded_tensor_dict_into_mb_list(input_, self.config.mb_spec)
        mb_list.mbs = [pack_tensor_dict(mb) for mb in mb_list.mbs]
        mb_list = pad_mb_list(
            mb_list,
            pad_value=0.0,
            pad_to_maximum=self.config.pad_to_maximum,
        )
        self.logger.info(
            f"Microbatch #tokens (rank {dist.get_rank()}): {mb_list.group_lens}, "
            f"padded to: {mb_list.padded_to_lengths}, padding lengths: {mb_list.padding_lengths}"
        )
        # NOTE: We unsqueeze here because huggingface transformer models requires
        # packed input to be of shape [1, total_seqlen].
        mb_list = unsqueeze_mb_list(mb_list)
        if is_qwen2_vl_model(self.model_config.model_type):
            for mb in mb_list.padded_mbs:
                # [1, total_seqlen, 3] -> [3, 1, total_seqlen]
                mb["position_ids"] = torch.einsum("ijk->kij", mb["position_ids"])

        # FIXME: the resulting max_seqlen is a tensor rather than an integer
        # TODO: remove the usage of tensordict
        # Modern model implementations takes a dict as the input.
        # This eliminates a bug of Qwen2.5-VL for transformers<=4.53.1
        for i, mb in enumerate(mb_list.mbs):
            mb_list.mbs[i] = dict(**mb)
        for i, mb in enumerate(mb_list.padded_mbs):
            mb_list.padded_mbs[i] = dict(**mb)
        for mb, padded_mb in zip(mb_list.mbs, mb_list.padded_mbs):
            mb["max_length_q"] = mb["max_length_k"] = mb["max_seqlen"] = int(
                mb["max_seqlen"]
            )
            padded_mb["max_length_q"] = padded_mb["max_length_k"] = padded_mb[
                "max_seqlen"
            ] = int(padded_mb["max_seqlen"])
            mb["cu_seq_lens_q"] = mb["cu_seq_lens_k"] = mb["cu_seqlens"]
            padded_mb["cu_seq_lens_q"] = padded_mb["cu_seq_lens_k"] = padded_mb[
                "cu_seqlens"
            ]
            mb["use_cache"] = False
            padded_mb["use_cache"] = False
            if is_qwen3_moe_model(self.model_config.model_type):
                mb["attention_mask"] = None
                padded_mb["attention_mask"] = None
            else:
                mb["attention_mask"] = dict(full_attention=None)
                padded_mb["attention_mask"] = dict(full_attention=None)
            if "multi_modal_input" in mb:
                image_grid_thw_list = [
                    item["image_grid_thw"]
                    for item in mb["multi_modal_input"]
                    if "image_grid_thw" in item
                ]
                if image_grid_thw_list:
                    mb["image_grid_thw"] = torch.cat(image_grid_thw_list, dim=0)
                    padded_mb["image_grid_thw"] = torch.cat(image_grid_thw_list, dim=0)
                pixel_values_list = [
                    item["pixel_values"]
                    for item in mb["multi_modal_input"]
                    if "pixel_values" in item
                ]
                if pixel_values_list:
                    # Individual pixel_values shape: (#patches_per_sample, patch_size)
                    # Concatenate along dim=0 to get shape: (#total_patches, patch_size)
                    # For Qwen:
                    # - image_grid_thw shape: (#total_images, 3) where 3 -> [grid_t, grid_h, grid_w]
                    # - pixel_values shape: (#total_patches, patch_size)
                    # - total_patches = torch.sum(torch.prod(image_grid_thw, dim=1))
                    # - total_image_pad_tokens = total_patches // (merge_size**2)
                    mb["pixel_values"] = torch.cat(pixel_values_list, dim=0)
                    padded_mb["pixel_values"] = torch.cat(pixel_values_list, dim=0)
                video_grid_thw_list = [
                    item["video_grid_thw"]
                    for item in mb["multi_modal_input"]
                    if "video_grid_thw" in item
                ]
                if video_grid_thw_list:
                    mb["video_grid_thw"] = torch.cat(video_grid_thw_list, dim=0)
                    padded_mb["video_grid_thw"] = torch.cat(video_grid_thw_list, dim=0)
        return mb_list

    # (benchmark cut: get_model_name_parameters, train_batch, eval_batch, forward)
