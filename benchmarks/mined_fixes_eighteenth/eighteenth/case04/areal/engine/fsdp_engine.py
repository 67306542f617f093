import dataclasses
import math
import os
import time
from datetime import datetime
from typing import Any, Callable, Dict, List, Optional

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_F
import torch.nn as nn
from tensordict import TensorDict
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
)
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.tensor import DTensor, Replicate, Shard
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    ParallelStyle,
    PrepareModuleInput,
    RowwiseParallel,
    SequenceParallel,
    parallelize_module,
)
from transformers import AutoProcessor, PreTrainedTokenizerFast

from areal.api.alloc_mode import FSDPParallelStrategy, ParallelStrategy
from areal.api.cli_args import TrainEngineConfig
from areal.api.io_struct import FinetuneSpec, ParamSpec, SaveLoadMeta, WeightUpdateMeta
from areal.engine.base_hf_engine import BaseHFEngine
from areal.models.transformers.ulyssess_patch import apply_monkey_patch
from areal.platforms import current_platform
from areal.utils import datapack, logging, name_resolve, names, pkg_version
from areal.utils.data import (
    pack_tensor_dict,
    pad_and_stack_tensors_along_first_dim,
    reorder_list,
    unpack_sequence,
)
from areal.utils.distributed import init_custom_process_group
from areal.utils.fsdp import (
    CPUOffloadPolicy,
    MixedPrecisionPolicy,
    apply_fsdp2,
    fsdp2_clip_grad_norm,
    fsdp2_load_full_state_dict,
)
from areal.utils.model import VALID_VISION_MODELS
from areal.utils.save_load import get_state_dict_from_repo_id_or_path
from areal.utils.ulysses import (
    get_ulysses_sequence_parallel_group,
    set_ulysses_sequence_parallel_group,
    ulysses_pad,
    ulysses_pad_and_slice_inputs,
)


class FSDPEngine(BaseHFEngine):
    def __init__(self, config: TrainEngineConfig):
        super().__init__(config)
        # FSDP options
        self.fsdp_tp_device_mesh = None
        self.mixed_precision_policy = None
        self.cpu_offload = None

        self.dp_world_size = None
        self.sp_world_size = None
        self.tp_world_size = None

        self.dp_group = None
        self.sp_group = None
        self.mp_group = None

        self.rank = None
        self.dp_head = None
        self.dp_rank = None

    # (benchmark cut: data_parallel_group, data_parallel_rank, data_parallel_world_size, current_data_parallel_head, is_data_parallel_head, context_and_model_parallel_group)

    def _make_parallel_strategy(
        self, parallel_strategy: ParallelStrategy
    ) -> FSDPParallelStrategy:
        return FSDPParallelStrategy(
            **dataclasses.asdict(parallel_strategy),
        )

    def create_process_group(self, parallel_strategy: ParallelStrategy):
        super().create_process_group(parallel_strategy)

        self.logger = logging.getLogger(f"[FSDP Engine Rank {dist.get_rank()}]")

        self.parallel_strategy = self._make_parallel_strategy(parallel_strategy)

        self.dp_world_size = self.parallel_strategy.data_parallel_size
        # This is Ulysses sequence parallelism
        self.sp_world_size = self.parallel_strategy.context_parallel_size
        self.tp_world_size = self.parallel_strategy.tensor_parallel_size

        self.logger.info(
            f"Initializing device mesh with mode d{self.dp_world_size}s{self.sp_world_size}t{self.tp_world_size}."
        )

        self.fsdp_tp_device_mesh = init_device_mesh(
            current_platform.device_type,
            mesh_shape=(self.dp_world_size * self.sp_world_size, self.tp_world_size),
            mesh_dim_names=("fsdp", "tp"),
        )

        nd_device_mesh = init_device_mesh(
            current_platform.device_type,
            mesh_shape=(self.dp_world_size, self.sp_world_size, self.tp_world_size),
            mesh_dim_names=("dp", "sp", "tp"),
        )

        self.dp_group = nd_device_mesh["dp"].get_group()
        self.sp_group = nd_device_mesh["sp"].get_group()

        nd_device_mesh["sp", "tp"]._flatten(mesh_dim_name="mp")

        self.mp_group = nd_device_mesh["mp"].get_group()

        self.rank = dist.get_rank()

        self.dp_head = nd_device_mesh["mp"].mesh[0].item()
        self.dp_rank = dist.get_rank(self.dp_group)

        self.logger.info(f"Data parallel head {self.dp_head} and rank {self.dp_rank}")

        current_sp_group = get_ulysses_sequence_parallel_group()
        if current_sp_group is not None:
            current_sp_group_ranks = dist.get_process_group_ranks(current_sp_group)
            sp_group_ranks = dist.get_process_group_ranks(self.sp_group)
            if current_sp_group_ranks != sp_group_ranks:
                raise RuntimeError(
                    f"Ulysses sequence parallel group mismatch: current ranks {current_sp_group_ranks} v.s. new ranks {sp_group_ranks}"
                )
        else:
            set_ulysses_sequence_parallel_group(self.sp_group)

    # (benchmark cut: apply_tensor_parallel)

    def initialize(self, addr: str | None, ft_spec: FinetuneSpec | None):
        # Initialize distributed enviroments and load model.
        assert addr is None, "FSDPEngine does not support remote initialization."
        assert ft_spec is not None, "FSDPEngine requires FinetuneSpec to initialize."
        assert pkg_version.is_version_greater_or_equal(
            "torch", "2.4.0"
        ), f"areal only supports FSDP2, which requires torch>=2.4.0"

        assert self.fsdp_tp_device_mesh is not None
        assert self.sp_world_size is not None

        # Create device model
        self.create_device_model()

        # Monkey patch: replace attention's forward() with Ulysses variant.
        apply_monkey_patch(
            model=self.model,
            ulysses_sp_size=self.sp_world_size,
        )

        if self.tp_world_size > 1:
            self.apply_tensor_parallel(self.fsdp_tp_device_mesh["tp"])

        # sharding_strategy = ShardingStrategy.FULL_SHARD
        # Simple auto wrap policy
        self.mixed_precision_policy = MixedPrecisionPolicy(
            param_dtype=getattr(torch, self.config.dtype),
            reduce_dtype=getattr(torch, self.config.grad_reduce_dtype),
            cast_forward_inputs=True,
        )
        self.cpu_offload = (
            CPUOffloadPolicy() if self.config.fsdp.offload_params else None
        )
        fsdp_kwargs = {
            "mesh": self.fsdp_tp_device_mesh["fsdp"],
            "mp_policy": self.mixed_precision_policy,
            "offload_policy": self.cpu_offload,
            "reshard_after_forward": True,
        }
        tik = time.perf_counter()
        apply_fsdp2(self.model, fsdp_kwargs, self.config.fsdp.wrap_policy)
        self.logger.info(f"Applying FSDP2 time: {time.perf_counter() - tik}")

        self.create_optimizer(ft_spec)
        self.initialized = True

    # (benchmark cut: save, load, _save_model_to_hf, _load_model_from_hf, upload_weights, _init_distributed_weight_update, _update_weights_from_distributed, _bin_pack_param_specs, get_param_specs, train_batch)

    @torch.no_grad()
    def eval_batch(
        self,
        input_: TensorDict,
        loss_fn: Callable[[torch.Tensor, TensorDict], torch.Tensor],
        loss_weight_fn: Callable[[TensorDict], float],
    ) -> torch.Tensor | None:
        """Evaluate on a batch."""
        mb_list = self.prepare_mb_list(input_)
        mb_list = mb_list.to(self.device)

        total_loss_weight = (
            sum([loss_weight_fn(mb) for mb in mb_list.mbs])
            .detach()
            .clone()
            .to(dtype=torch.float32)
        )
        assert total_loss_weight != 0

        total_loss = 0.0
        total_weight = 0.0

        for pad_length, padded_mb_input, mb_input in zip(
            mb_list.padding_lengths, mb_list.padded_mbs, mb_list.mbs
        ):
            if self.sp_world_size > 1:
                input_ids = padded_mb_input["input_ids"]
                position_ids = padded_mb_input.get("position_ids", None)

                if self.is_vision_model:
                    (
                        ulysses_input_ids,
                        ulysses_position_ids,
                        ulysses_pad_size,
                    ) = ulysses_pad(input_ids, position_ids, sp_size=self.sp_world_size)
                else:
                    # Pad and slice the inputs
                    (
                        ulysses_input_ids,
                        ulysses_position_ids,
                        ulysses_pad_size,
                    ) = ulysses_pad_and_slice_inputs(
                        input_ids,
                        position_ids,
                        sp_size=self.sp_world_size,
                    )

                if (
                    ulysses_position_ids is not None
                    and not ulysses_position_ids.is_contiguous()
                ):
                    ulysses_position_ids = ulysses_position_ids.contiguous()

                inputs = padded_mb_input.copy()
                inputs["input_ids"] = ulysses_input_ids
                if ulysses_position_ids is not None:
                    inputs["position_ids"] = ulysses_position_ids
            else:
                inputs = padded_mb_input

            outputs = self.model(**inputs)

            logits = outputs.logits.squeeze(0)
            if self.sp_world_size > 1:
                # Gather and remove Ulysses padding
                gathered_logits = dist_F.all_gather(logits, group=self.sp_group)
                logits = torch.cat(gathered_logits, dim=0)
                logits = logits[:-ulysses_pad_size] if ulysses_pad_size > 0 else logits
            # Remove original padding
            logits = logits[:-pad_length] if pad_length > 0 else logits
            loss = loss_fn(logits, mb_input)

            # Simple weight calculation (could be improved)
            loss_scale = loss_weight_fn(mb_input) / total_loss_weight
            total_loss += loss.item() * loss_scale  # SYNC (pre-fix, #335)
            total_weight += loss_scale

        return torch.tensor(total_loss / total_weight)

    # (benchmark cut: forward)
