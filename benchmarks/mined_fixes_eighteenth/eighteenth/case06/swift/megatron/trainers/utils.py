# Copyright (c) ModelScope Contributors. All rights reserved.
import gc
import torch
from accelerate.utils import gather as hf_gather
from accelerate.utils import gather_object as hf_gather_object
from contextlib import nullcontext
from dataclasses import dataclass
from megatron.core import mpu
from megatron.core.distributed import DistributedDataParallel as DDP
from megatron.core.optimizer import ChainedOptimizer
from typing import Any, Optional

from swift.dataloader import DataLoaderDispatcher
from swift.megatron.utils import get_batch_on_this_cp_rank, get_packed_seq_params
from swift.utils import empty_cache, get_current_device, get_logger, to_device

logger = get_logger()


def get_batch_on_this_pp_rank(args, data, vp_stage=None):
    if args.task_type == 'causal_lm':
        data['labels'] = torch.roll(data['labels'], -1, dims=-1)
        if 'loss_scale' in data:
            data['loss_scale'] = torch.roll(data['loss_scale'], -1, dims=-1)
    batch = to_device(data, get_current_device(), non_blocking=True)
    if args.pipeline_model_parallel_size == 1:
        return batch
    is_pp_last_stage = mpu.is_pipeline_last_stage(ignore_virtual=False, vp_stage=vp_stage)
    if not is_pp_last_stage:
        batch['labels'] = None
        if 'loss_scale' in batch:
            batch['loss_scale'] = None

    return batch


# (benchmark cut: gather, gather_object, load_megatron_model_to_gpu, offload_megatron_model_to_cpu, load_megatron_copy_params, offload_megatron_copy_params, load_megatron_optimizer, offload_megatron_optimizer, log_gpu_memory, TrainerState, MegatronDataLoaderDispatcher, build_streaming_dataloader)


_NPU_ATTENTION_MASK_2D_MODEL_TYPES = {'qwen3_5', 'qwen3_5_moe'}


def _should_use_npu_generated_attention_mask(args) -> bool:
    from transformers.utils import is_torch_npu_available
    if not is_torch_npu_available():
        return False
    if args.task_type != 'causal_lm' or args.padding_free:
        return False
    if getattr(args, 'attention_backend', None) == 'local':
        return False
    return bool(getattr(args, 'use_flash_attn', False))


def _prepare_npu_generated_attention_mask(batch, *, keep_attention_mask_2d: bool) -> None:
    if keep_attention_mask_2d:
        attention_mask = batch.get('attention_mask')
        if 'attention_mask_2d' not in batch and attention_mask is not None:
            batch['attention_mask_2d'] = (attention_mask == 0).sum(dim=(1, 2)) > 0
    else:
        batch.pop('attention_mask_2d', None)
    batch['attention_mask'] = None


def prepare_batch(args, data, vp_stage=None):
    """Prepare a micro-batch for Megatron forward: PP slicing, packed_seq_params, CP slicing.

    Extracted from BaseMegatronTrainer._prepare_batch for reuse in ray workers.
    """
    batch = get_batch_on_this_pp_rank(args, data, vp_stage=vp_stage)
    seq_lens = batch.pop('seq_lens', None)
    # Consider compatibility and security.
    num_samples = batch.pop('num_samples', None)
    if seq_lens is not None:
        if num_samples is not None:
            assert num_samples == len(seq_lens), (
                f"'num_samples' ({num_samples}) is inconsistent with len(seq_lens) ({len(seq_lens)}).")
        num_samples = len(seq_lens)
    text_position_ids = batch.pop('text_position_ids', None)
    if text_position_ids is None:
        text_position_ids = batch.get('position_ids')
    if _should_use_npu_generated_attention_mask(args):
        _prepare_npu_generated_attention_mask(
            batch, keep_attention_mask_2d=getattr(args, 'model_type', None) in _NPU_ATTENTION_MASK_2D_MODEL_TYPES)
    else:
        batch.pop('attention_mask_2d', None)
    if args.padding_free and text_position_ids is not None:
        batch['packed_seq_params'] = get_packed_seq_params(args, text_position_ids)
        if seq_lens is not None:
            batch['packed_seq_params'].seq_lens = torch.tensor(seq_lens, device=text_position_ids.device)
        if num_samples is not None:
            batch['packed_seq_params'].num_samples = num_samples
    batch.setdefault('attention_mask', None)
    batch = get_batch_on_this_cp_rank(args, batch)
    return batch


# (benchmark cut: compute_per_token_logps_fn, reconstruct_tensor_cp)
