"""ModelRunner runs the forward passes of the models."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Tuple, Union

import torch

from sglang.srt.configs.model_config import AttentionArch
from sglang.srt.layers.attention.attention_registry import (
    ATTENTION_BACKENDS,
    attn_backend_wrapper,
)
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.layers.attention.tbo_backend import TboAttnBackend
from sglang.srt.server_args import ServerArgs

if TYPE_CHECKING:
    # (benchmark cut: imported at module level in the real file; only used in
    #  annotations here)
    from sglang.srt.layers.logits_processor import LogitsProcessorOutput
    from sglang.srt.layers.pooler import EmbeddingPoolerOutput
    from sglang.srt.model_executor.forward_batch_info import PPProxyTensors

# (benchmark cut: the many other imports of the real module)

logger = logging.getLogger(__name__)


@dataclass
class ModelRunnerOutput:
    logits_output: object
    can_run_graph: bool


class ModelRunner:
    """ModelRunner runs the forward passes of the models."""

    def __init__(
        self,
        model_config,
        mem_fraction_static: float,
        gpu_id: int,
        tp_rank: int,
        tp_size: int,
        moe_ep_rank: int,
        moe_ep_size: int,
        pp_rank: int,
        pp_size: int,
        nccl_port: int,
        server_args: ServerArgs,
        dp_rank: Optional[int] = None,
        is_draft_worker: bool = False,
        req_to_token_pool=None,
        token_to_kv_pool_allocator=None,
    ):
        # Parse args
        self.mem_fraction_static = mem_fraction_static
        self.device = server_args.device
        self.gpu_id = gpu_id
        # (benchmark cut: parallel ranks)
        self.model_config = model_config
        self.server_args = server_args
        self.is_draft_worker = is_draft_worker
        self.is_generation = model_config.is_generation
        self.is_multimodal = model_config.is_multimodal
        self.page_size = server_args.page_size
        self.req_to_token_pool = req_to_token_pool
        self.token_to_kv_pool_allocator = token_to_kv_pool_allocator
        self.use_mla_backend = self.model_config.attention_arch == AttentionArch.MLA
        self.forward_pass_id = 0
        self.init_new_workspace = False
        # (benchmark cut: the rest of __init__)
        self.support_pp = False
        self.graph_runner = None
        self.piecewise_cuda_graph_runner = None

    def initialize(self, pre_model_load_memory: float):
        # (benchmark cut: model loading, memory pool, hisparse, routed experts,
        #  aux hidden state capture)
        if self.device == "cuda" or self.device == "musa":
            self.init_cublas()
            self.init_attention_backend()
            self.kernel_warmup()
            self.init_device_graphs()
        else:
            # (benchmark cut: npu / cpu / out-of-tree branches)
            self.graph_runner = None
            self.init_attention_backend()

    def init_cublas(self):
        # (benchmark cut)
        pass

    def kernel_warmup(self):
        # (benchmark cut)
        pass

    def init_device_graphs(self):
        # (benchmark cut: cuda graphs are disabled with
        #  --multi-item-scoring-delimiter, see ServerArgs._handle_multi_item_scoring)
        pass

    def init_attention_backend(self):
        """Init attention kernel backend."""
        if self.server_args.enable_pdmux:
            self.attn_backend = self._get_attention_backend(init_new_workspace=True)
            self.decode_attn_backend_group = []
            for _ in range(self.server_args.sm_group_num):
                self.decode_attn_backend_group.append(self._get_attention_backend())
            self.decode_attn_backend = self.decode_attn_backend_group[0]
        elif self.server_args.enable_two_batch_overlap and not self.is_draft_worker:
            self.attn_backend = TboAttnBackend.init_new(self._get_attention_backend)
        else:
            self.attn_backend = self._get_attention_backend()

    def _get_attention_backend(self, init_new_workspace: bool = False):
        """Init attention kernel backend."""
        # (benchmark cut: draft / hybrid prefill-decode backend selection)
        attn_backend = self._get_attention_backend_from_str(
            self.server_args.attention_backend,
            init_new_workspace=init_new_workspace,
        )
        return attn_backend

    def _get_attention_backend_from_str(
        self, backend_str: str, init_new_workspace: bool = False
    ):
        if backend_str not in ATTENTION_BACKENDS:
            raise ValueError(f"Invalid attention backend: {backend_str}")
        self.init_new_workspace = init_new_workspace
        full_attention_backend = ATTENTION_BACKENDS[backend_str](self)
        return attn_backend_wrapper(self, full_attention_backend)

    def forward_extend(
        self,
        forward_batch: ForwardBatch,
        skip_attn_backend_init: bool = False,
        pp_proxy_tensors=None,
    ) -> Tuple[
        Union[LogitsProcessorOutput, PPProxyTensors, EmbeddingPoolerOutput], bool
    ]:
        kwargs = {}
        if self.support_pp:
            kwargs["pp_proxy_tensors"] = pp_proxy_tensors
        if forward_batch.input_embeds is not None:
            kwargs["input_embeds"] = forward_batch.input_embeds.bfloat16()
        # (benchmark cut: token embedding overrides)
        if not self.is_generation:
            kwargs["get_embedding"] = True

        can_run_graph = (
            self.piecewise_cuda_graph_runner is not None
            and self.piecewise_cuda_graph_runner.can_run(forward_batch)
        )

        if can_run_graph:
            return (
                self.piecewise_cuda_graph_runner.replay(forward_batch, **kwargs),
                can_run_graph,
            )

        if not skip_attn_backend_init:
            self.attn_backend.init_forward_metadata(forward_batch)

        return (
            self.model.forward(
                forward_batch.input_ids,
                forward_batch.positions,
                forward_batch,
                **kwargs,
            ),
            can_run_graph,
        )

    # (benchmark cut: forward_decode, forward_idle, forward_split_prefill)

    def forward(
        self,
        forward_batch: ForwardBatch,
        skip_attn_backend_init: bool = False,
        pp_proxy_tensors=None,
        reinit_attn_backend: bool = False,
        split_forward_count: int = 1,
    ) -> ModelRunnerOutput:
        self.forward_pass_id += 1

        # (benchmark cut: expert distribution recorder, elastic EP, routed
        #  experts capturer, EPLB, dumper)
        output = self._forward_raw(
            forward_batch,
            skip_attn_backend_init,
            pp_proxy_tensors,
            reinit_attn_backend,
            split_forward_count,
        )
        return output

    def _forward_raw(
        self,
        forward_batch: ForwardBatch,
        skip_attn_backend_init: bool,
        pp_proxy_tensors,
        reinit_attn_backend: bool = False,
        split_forward_count: int = 1,
    ) -> ModelRunnerOutput:
        mode_check = (
            forward_batch.forward_mode.is_cpu_graph
            if self.device == "cpu"
            else forward_batch.forward_mode.is_cuda_graph
        )
        can_run_graph = bool(
            mode_check()
            and self.graph_runner
            and self.graph_runner.can_run(forward_batch)
        )

        if can_run_graph:
            ret = self.graph_runner.replay(
                forward_batch,
                skip_attn_backend_init=skip_attn_backend_init,
                pp_proxy_tensors=pp_proxy_tensors,
            )
            return ModelRunnerOutput(logits_output=ret, can_run_graph=can_run_graph)

        # (benchmark cut: MLP sync, num_token_non_padded, SWA loc, hisparse)

        if forward_batch.forward_mode.is_decode():
            ret = self.forward_decode(
                forward_batch,
                skip_attn_backend_init=skip_attn_backend_init,
                pp_proxy_tensors=pp_proxy_tensors,
            )
        elif forward_batch.forward_mode.is_extend(include_draft_extend_v2=True):
            ret, can_run_graph = self.forward_extend(
                forward_batch,
                skip_attn_backend_init=skip_attn_backend_init,
                pp_proxy_tensors=pp_proxy_tensors,
            )
        else:
            # (benchmark cut: split prefill / idle)
            raise ValueError(f"Invalid forward mode: {forward_batch.forward_mode}")

        return ModelRunnerOutput(logits_output=ret, can_run_graph=can_run_graph)

    def forward_decode(self, forward_batch, skip_attn_backend_init=False, pp_proxy_tensors=None):
        # (benchmark cut)
        raise NotImplementedError()
