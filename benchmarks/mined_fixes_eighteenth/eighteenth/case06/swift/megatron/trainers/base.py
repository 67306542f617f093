# Copyright (c) ModelScope Contributors. All rights reserved.
import dataclasses
import logging
import megatron.core
import operator
import os
import shutil
import torch
import torch.nn
from abc import ABC, abstractmethod
from contextlib import contextmanager, nullcontext
from functools import partial
from mcore_bridge import LoraParallelLinear
from megatron.core import mpu
from megatron.core.distributed import DistributedDataParallel as DDP
from megatron.core.distributed import FullyShardedDataParallel as megatron_FSDP
from megatron.core.distributed import finalize_model_grads
from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
from megatron.core.pipeline_parallel import get_forward_backward_func
from megatron.core.transformer.module import MegatronModule
from megatron.core.transformer.moe.moe_utils import track_moe_metrics
from megatron.core.transformer.multi_token_prediction import MTPLossLoggingHelper
from modelscope import check_local_model_is_latest
from packaging import version
from pathlib import Path
from typing import Callable, Dict, List, Optional

from swift.dataset import RowPreprocessor
from swift.megatron.callbacks import megatron_callbacks_map
from swift.megatron.model import get_mcore_model
from swift.megatron.utils import (apply_router_replay_patch, disable_forward_pre_hook, enable_forward_pre_hook,
                                  get_optimizer_param_scheduler, get_padding_to, init_persistent_async_worker,
                                  initialize_tp_communicators, load_mcore_checkpoint,
                                  logical_and_across_model_parallel_group, maybe_finalize_async_save,
                                  prepare_mcore_model, reconstruct_tensor_cp,
                                  reduce_max_stat_across_model_parallel_group, save_mcore_checkpoint,
                                  should_disable_forward_pre_hook, warmup_jit_function, wrap_model)
from swift.template import Template
from swift.trainers import dynamic_gradient_checkpointing
from swift.trainers.utils import patch_modelscope_hub_timeout
from swift.utils import (deep_getattr, gc_collect, get_current_device, get_last_valid_indices, get_logger, is_last_rank,
                         is_master, ms_logger_context)
from .batch_sampler import MegatronPretrainingRandomSampler, MegatronPretrainingSampler
from .utils import TrainerState, build_streaming_dataloader, prepare_batch

try:
    from megatron.core.optimizer import param_group_identifier_keys
    from megatron.core.transformer.moe.router_replay import RouterReplay, RouterReplayAction
except ImportError:
    param_group_identifier_keys = None
    RouterReplay = None
    RouterReplayAction = None

mcore_016 = version.parse(megatron.core.__version__) >= version.parse('0.16.0rc0')

logger = get_logger()


class BaseMegatronTrainer(ABC):

    def __init__(self, args, template: Template):
        # validate mcore version and patch routing_replay
        self.enable_routing_replay = args.router_replay_mode != 'disabled'
        if self.enable_routing_replay:
            apply_router_replay_patch()

        self.args = args
        self.template = template
        self.prepare_model()
        # Sync template.padding_free after prepare_model(), because _check_padding_free
        # may override args.padding_free for certain models (e.g. DSA attention).
        if template.padding_free != args.padding_free:
            logger.warning(f'template.padding_free({template.padding_free}) != args.padding_free({args.padding_free}), '
                           f'syncing template.padding_free to {args.padding_free}.')
            template.padding_free = args.padding_free
        self.optimizer, self.opt_param_scheduler = self.get_optimizer_and_scheduler()
        self.data_collator = self._get_data_collator()

        self.state = TrainerState(max_steps=args.train_iters)
        initialize_embedding = args.new_special_tokens or args.task_type == 'seq_cls'
        if initialize_embedding:
            for m in self.unwrapped_models:
                self._initialize_embedding(m)
        self._load_checkpoint()

        self.eval_metrics = None
        if args.check_model and hasattr(args, 'model_dir'):
            with ms_logger_context(logging.CRITICAL), patch_modelscope_hub_timeout():
                config_info = self._collect_config_info()
                config_info.update({
                    'invoked_by': 'local_trainer',
                    'third_party': 'swift',
                    'trainer_class': self.__class__.__name__,
                    'trainer_backend': 'megatron',
                })
                check_local_model_is_latest(args.model_info.model_dir, user_agent=config_info)

        self.callbacks = []
        for callback in args.callbacks:
            self.callbacks.append(megatron_callbacks_map[callback](self))

        if args.tp_comm_overlap:
            initialize_tp_communicators(args, self.config)

        warmup_jit_function(self.config, args)

        if args.async_save and args.use_persistent_ckpt_worker:
            init_persistent_async_worker()

    # (benchmark cut: _load_checkpoint, call_event, on_log, _log_callback)

    def prepare_model(self):
        args = self.args
        self.unwrapped_models = get_mcore_model(args, self.template.config)
        self.config = self.unwrapped_models[0].config
        logger.info(f'model_config: {self.config}')
        self.bridge = self.config.bridge
        self.peft_models = self._prepare_peft_model(self.unwrapped_models)
        self.wrapped_models = wrap_model(args, self.unwrapped_models)

    # (benchmark cut: _prepare_peft_model, get_optimizer_and_scheduler, _get_data_collator, cyclic_iter, _get_param_groups_mcore_016, _get_param_groups, _patch_get_param_groups, _load_iteration, _prepare_vit_gradient_checkpointing, _initialize_embedding)

    def _all_reduce_metric(self,
                           metric: Dict[str, torch.Tensor],
                           reduction=torch.distributed.ReduceOp.AVG,
                           group=None) -> Dict[str, torch.Tensor]:
        if group is None:
            group = mpu.get_data_parallel_group()
        reporting_metric = torch.stack(list(metric.values()), dim=0)
        torch.distributed.all_reduce(reporting_metric, reduction, group=group)
        return {k: reporting_metric[i] for i, k in enumerate(metric.keys())}

    # (benchmark cut: merge_lora_adapters, unmerge_lora_adapters, copy_path, _prepare_data_iterator)

    def setup_model_training(self):
        args = self.args
        config = self.config

        for m in self.wrapped_models:
            m.train()

        if args.is_multimodal:
            for m in self.unwrapped_models:
                self._prepare_vit_gradient_checkpointing(m)

        config.grad_scale_func = self.optimizer.scale_loss
        if isinstance(self.wrapped_models[0], (DDP, megatron_FSDP)) and args.overlap_grad_reduce:
            assert config.no_sync_func is None, ('When overlap_grad_reduce is True, config.no_sync_func must be None; '
                                                 'a custom no_sync_func is not supported when overlapping grad-reduce')
            config.no_sync_func = [model_chunk.no_sync for model_chunk in self.wrapped_models]
            if len(self.wrapped_models) == 1:
                config.no_sync_func = config.no_sync_func[0]
            if args.align_grad_reduce:
                config.grad_sync_func = [model_chunk.start_grad_sync for model_chunk in self.wrapped_models]
                if len(self.wrapped_models) == 1:
                    config.grad_sync_func = config.grad_sync_func[0]
        if args.overlap_param_gather and args.align_param_gather:
            config.param_sync_func = [model_chunk.start_param_sync for model_chunk in self.wrapped_models]
            if len(self.wrapped_models) == 1:
                config.param_sync_func = config.param_sync_func[0]
        config.finalize_model_grads_func = finalize_model_grads

        self._start_iteration = self.state.iteration
        self._pre_hook_enabled = False
        if should_disable_forward_pre_hook(args):
            disable_forward_pre_hook(self.wrapped_models, param_sync=False)
            self._saved_param_sync_func = config.param_sync_func
            config.param_sync_func = None

        if args.nccl_comm_warmup:
            # Eagerly create NCCL communicators while GPU memory is still free. Lazily-initialized
            # comms (e.g. the dp/cp loss all-reduce and grad-sync coalescing) otherwise first fire
            # at the iteration-1 memory peak, where NCCL's internal cudaMalloc can fail with
            # "Failed to CUDA calloc async N bytes". A 1-element dummy all-reduce per group is
            # numerically inert and forces the communicator to be created up front.
            dummy = torch.zeros(1, device=get_current_device())
            warmed = 0
            for getter, kwargs in (
                (mpu.get_data_parallel_group, {
                    'with_context_parallel': True
                }),
                (mpu.get_data_parallel_group, {}),
                (mpu.get_context_parallel_group, {}),
                (mpu.get_tensor_model_parallel_group, {}),
                (mpu.get_pipeline_model_parallel_group, {}),
                (mpu.get_model_parallel_group, {}),
                (mpu.get_embedding_group, {}),
                (mpu.get_position_embedding_group, {}),
            ):
                try:
                    group = getter(**kwargs)
                except (AssertionError, ValueError, TypeError):
                    continue
                for g in (group if isinstance(group, list) else [group]):
                    if g is not None:
                        torch.distributed.all_reduce(dummy, group=g)
                        warmed += 1
            torch.cuda.synchronize()
            logger.info(f'NCCL communicator warm-up done ({warmed} groups).')

        self.call_event('on_train_begin')
        self._train_metrics = {}

    def setup_training(self, train_dataset, val_dataset):
        self.setup_model_training()
        args = self.args
        if args.virtual_pipeline_model_parallel_size is not None:
            train_data_iterator, val_data_iterator = [], []
            for _ in range(args.virtual_pipeline_model_parallel_size):
                train_it, val_it = self._prepare_data_iterator(train_dataset, val_dataset)
                train_data_iterator.append(train_it)
                val_data_iterator.append(val_it)
        else:
            train_data_iterator, val_data_iterator = self._prepare_data_iterator(train_dataset, val_dataset)
        return train_data_iterator, val_data_iterator

    def run_train_step(self, train_data_iterator, val_data_iterator):
        """Execute one training iteration including logging / eval / save.

        Returns ``True`` if training should continue, ``False`` if done.
        """
        args = self.args
        config = self.config
        state = self.state

        self.call_event('on_step_begin')
        maybe_finalize_async_save(args, blocking=False)
        metrics, grad_norm, update_successful = self.train_step(train_data_iterator)

        if state.iteration == self._start_iteration:
            if update_successful:
                if should_disable_forward_pre_hook(args):
                    enable_forward_pre_hook(self.wrapped_models)
                    config.param_sync_func = self._saved_param_sync_func
                    self._pre_hook_enabled = True
            else:
                self._start_iteration = state.iteration + 1

        state.iteration += 1
        self.call_event('on_step_end')
        self._aggregated_metrics(metrics, self._train_metrics)
        self._train_metrics['grad_norm'] = grad_norm
        for param_group in self.optimizer.param_groups:
            if len(param_group['params']) == 0:
                continue
            self._train_metrics['learning_rate'] = param_group['lr']
            break
        if state.should_log:
            state.should_log = False
            self.on_log(logs=self._train_metrics)
            self._train_metrics = {}

        eval_metrics = None
        if state.should_eval:
            state.should_eval = False
            if should_disable_forward_pre_hook(args):
                disable_forward_pre_hook(self.wrapped_models)
                self._pre_hook_enabled = False
            eval_metrics = self.evaluate(val_data_iterator)
            for m in self.wrapped_models:
                m.train()
            if should_disable_forward_pre_hook(args):
                enable_forward_pre_hook(self.wrapped_models)
                self._pre_hook_enabled = True

        if state.should_save:
            self._determine_best_metric(eval_metrics)
            if should_disable_forward_pre_hook(args):
                disable_forward_pre_hook(self.wrapped_models)
            state.should_save = False
            self.save_checkpoint()
            self.call_event('on_save', output_dir=self.state.last_model_checkpoint)
            if should_disable_forward_pre_hook(args):
                enable_forward_pre_hook(self.wrapped_models)

        return state.iteration < args.train_iters

    def finalize_training(self):
        """Cleanup after training loop completes."""
        self.call_event('on_train_end')
        if self._pre_hook_enabled:
            disable_forward_pre_hook(self.wrapped_models)
        maybe_finalize_async_save(self.args, blocking=True, terminate=True)

    def train(self, train_dataset, val_dataset):
        train_data_iterator, val_data_iterator = self.setup_training(train_dataset, val_dataset)
        while self.state.iteration < self.args.train_iters:
            self.run_train_step(train_data_iterator, val_data_iterator)
        self.finalize_training()

    # (benchmark cut: _determine_best_metric, save_checkpoint, _rotate_checkpoints, _sorted_checkpoints, training_log)

    def evaluate(self, val_data_iterator):
        args = self.args
        for m in self.wrapped_models:
            m.eval()
        eval_metrics = {}
        forward_backward_func = get_forward_backward_func()
        self.call_event('on_eval_begin')
        with torch.no_grad():
            for _ in range(args.eval_iters):
                data_iterator = self._replace_data_iterator(val_data_iterator)
                metrics = forward_backward_func(
                    forward_step_func=self.forward_step,
                    data_iterator=data_iterator,
                    model=self.wrapped_models,
                    num_microbatches=self.args.num_microbatches,
                    seq_length=args.seq_length,
                    micro_batch_size=args.micro_batch_size,
                    forward_only=True,
                )
                self.call_event('on_eval_step')
                self._aggregated_metrics(metrics, eval_metrics)
        self.compute_eval_metrics(eval_metrics)
        self.on_log(logs=eval_metrics, prefix='eval_')
        self.call_event('on_eval_end')
        return eval_metrics

    # (benchmark cut: compute_eval_metrics)

    def _replace_data_iterator(self, data_iterator):
        return data_iterator

    def train_step(self, train_data_iterator):
        args = self.args
        forward_backward_func = get_forward_backward_func()
        for m in self.wrapped_models:
            m.zero_grad_buffer()
        self.optimizer.zero_grad()
        # TODO: refactor _replace_data_iterator
        data_iterator = self._replace_data_iterator(train_data_iterator)

        if self.enable_routing_replay:
            RouterReplay.set_global_router_replay_action(RouterReplayAction.REPLAY_FORWARD)

        metrics = forward_backward_func(
            forward_step_func=self.forward_step,
            data_iterator=data_iterator,
            model=self.wrapped_models,
            num_microbatches=args.num_microbatches,
            seq_length=args.seq_length,
            micro_batch_size=args.micro_batch_size,
            forward_only=False,
        )

        update_successful, grad_norm, _ = self.optimizer.step()
        update_successful = logical_and_across_model_parallel_group(update_successful)
        grad_norm = reduce_max_stat_across_model_parallel_group(grad_norm)
        if update_successful:
            self.opt_param_scheduler.step(increment=args.global_batch_size)

        if self.enable_routing_replay:
            RouterReplay.clear_global_router_replay_action()
            RouterReplay.clear_global_indices()

        return metrics, grad_norm, update_successful

    def _aggregated_metrics(self, metrics, total_metrics):
        if 'n_steps' not in total_metrics:
            total_metrics['n_steps'] = 0
        total_metrics['n_steps'] += 1
        if not metrics:
            return
        metrics = RowPreprocessor.rows_to_batched(metrics)
        for key, val in metrics.items():
            val = torch.stack([v for v in val if v is not None], dim=0)
            if val[0].numel() == 2:
                val = val.sum(dim=0)
                if val[1] == 0:
                    continue
            elif val[0].numel() == 1:
                val = val.new_tensor([val.sum(), val.shape[0]])
            else:
                raise ValueError(f'Invalid value shape: {val[0].shape} for key {key}')
            if key not in total_metrics:
                total_metrics[key] = torch.tensor([0.0, 0.0], dtype=torch.float32, device=torch.cuda.current_device())
            total_metrics[key] += val

    # (benchmark cut: _prepare_dataloader, _create_dataloader)

    @abstractmethod
    def forward_step(self, data_iterator, model):
        pass

    def _prepare_batch(self, data, vp_stage=None):
        return prepare_batch(self.args, data, vp_stage=vp_stage)

    def get_batch(self, data_iterator, vp_stage=None):
        """Generate a batch."""
        return self._prepare_batch(next(data_iterator), vp_stage)

    # (benchmark cut: _collect_config_info)

    def get_last_tokens(self, output_tensor, packed_seq_params=None, attention_mask=None):
        if self.args.context_parallel_size > 1:
            output_tensor = reconstruct_tensor_cp(output_tensor, packed_seq_params, dim=1)
        if packed_seq_params is None:
            # Compatible with attention_mask_2d
            if attention_mask.dim() > 2:
                attention_mask = (~attention_mask).sum(dim=(1, 2)) > 0
            last_token_idx = get_last_valid_indices(attention_mask.long())
            last_tokens = output_tensor[torch.arange(output_tensor.shape[0]), last_token_idx]
        else:
            num_samples = packed_seq_params.seq_lens.shape[0]
            last_token_idx = packed_seq_params.cu_seqlens_q[:num_samples] + packed_seq_params.seq_lens - 1
            last_tokens = output_tensor[0, last_token_idx]
        return last_tokens
