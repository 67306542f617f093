"""A tensor parallel worker."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, List, Optional

from sglang.srt.runtime_context import get_schedule
from sglang.srt.server_args import ServerArgs

if TYPE_CHECKING:
    from sglang.srt.model_executor.model_runner import ModelRunner

logger = logging.getLogger(__name__)


class TpModelWorker:
    """A tensor parallel model worker."""

    def __init__(
        self,
        server_args: ServerArgs,
        gpu_id: int,
        ps,
        nccl_port: int,
        is_draft_worker: bool = False,
        req_to_token_pool=None,
        token_to_kv_pool_allocator=None,
        memory_pool_config=None,
    ):
        # (benchmark cut: argument parsing, draft attention backend)
        self.server_args = server_args
        self.gpu_id = gpu_id
        self.ps = ps
        self.nccl_port = nccl_port
        self.is_draft_worker = is_draft_worker
        self.req_to_token_pool = req_to_token_pool
        self.token_to_kv_pool_allocator = token_to_kv_pool_allocator
        self.memory_pool_config = memory_pool_config

        self._init_model_config()
        self._init_model_runner()

        # (benchmark cut: multi-layer EAGLE runners, dLLM, tokenizer / processor)
        self.device = self.model_runner.device

        # (benchmark cut: nccl groups, max tokens, random seed)

    def _init_model_config(self):
        # (benchmark cut: ModelConfig.from_server_args)
        self.model_config = None

    def _init_model_runner(self):
        from sglang.srt.model_executor.model_runner import ModelRunner

        self._model_runner = ModelRunner(
            model_config=self.model_config,
            mem_fraction_static=get_schedule().mem_fraction_static,
            gpu_id=self.gpu_id,
            ps=self.ps,
            nccl_port=self.nccl_port,
            server_args=self.server_args,
            is_draft_worker=self.is_draft_worker,
            req_to_token_pool=self.req_to_token_pool,
            token_to_kv_pool_allocator=self.token_to_kv_pool_allocator,
            memory_pool_config=self.memory_pool_config,
            # (benchmark cut: draft_attention_backend, draft_model_idx)
        )

    @property
    def model_runner(self) -> ModelRunner:
        return self._model_runner
