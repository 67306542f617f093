"""A tensor parallel worker."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional

import torch

from sglang.srt.managers.schedule_batch import ModelWorkerBatch
from sglang.srt.managers.scheduler import GenerationBatchResult
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.server_args import ServerArgs

# (benchmark cut: the other imports of the real module)

if TYPE_CHECKING:
    from sglang.srt.model_executor.model_runner import ModelRunner

logger = logging.getLogger(__name__)


class TpModelWorker:
    """A tensor parallel model worker."""

    def __init__(
        self,
        server_args: ServerArgs,
        gpu_id: int,
        tp_rank: int,
        moe_ep_rank: int,
        pp_rank: int,
        dp_rank: Optional[int],
        nccl_port: int,
        is_draft_worker: bool = False,
        req_to_token_pool=None,
        token_to_kv_pool_allocator=None,
    ):
        # Parse args
        self.server_args = server_args
        self.tp_size = server_args.tp_size
        self.gpu_id = gpu_id
        self.tp_rank = tp_rank
        self.moe_ep_rank = moe_ep_rank
        self.pp_rank = pp_rank
        self.dp_rank = dp_rank
        self.nccl_port = nccl_port
        self.is_draft_worker = is_draft_worker
        self.req_to_token_pool = req_to_token_pool
        self.token_to_kv_pool_allocator = token_to_kv_pool_allocator

        # (benchmark cut: model config, distributed init, memory pool sizing)
        self._init_model_runner()

    @property
    def model_runner(self) -> ModelRunner:
        return self._model_runner

    def _init_model_runner(self):
        from sglang.srt.model_executor.model_runner import ModelRunner

        self._model_runner = ModelRunner(
            model_config=self.model_config,
            mem_fraction_static=self.server_args.mem_fraction_static,
            gpu_id=self.gpu_id,
            tp_rank=self.tp_rank,
            tp_size=self.tp_size,
            moe_ep_rank=self.moe_ep_rank,
            moe_ep_size=self.server_args.ep_size,
            pp_rank=self.pp_rank,
            pp_size=self.server_args.pp_size,
            nccl_port=self.nccl_port,
            dp_rank=self.dp_rank,
            server_args=self.server_args,
            is_draft_worker=self.is_draft_worker,
            req_to_token_pool=self.req_to_token_pool,
            token_to_kv_pool_allocator=self.token_to_kv_pool_allocator,
        )

    def forward_batch_generation(
        self,
        model_worker_batch: ModelWorkerBatch,
        forward_batch: Optional[ForwardBatch] = None,
        pp_proxy_tensors=None,
        is_verify: bool = False,
        skip_attn_backend_init=False,
    ) -> GenerationBatchResult:
        # Get forward batch from model worker batch
        if model_worker_batch is not None:
            # (benchmark cut: hicache consumer index)
            forward_batch = ForwardBatch.init_new(model_worker_batch, self.model_runner)
        else:
            # FIXME(lsyin): unify the interface of forward_batch
            assert forward_batch is not None

        # (benchmark cut: dllm, non-last PP rank)
        out = self.model_runner.forward(
            forward_batch,
            pp_proxy_tensors=pp_proxy_tensors,
            skip_attn_backend_init=skip_attn_backend_init,
        )
        logits_output, can_run_cuda_graph = out.logits_output, out.can_run_graph
        batch_result = GenerationBatchResult(
            logits_output=logits_output,
            can_run_cuda_graph=can_run_cuda_graph,
        )

        if is_verify:
            # Skip sampling and return logits for target forward
            return batch_result

        if not model_worker_batch.is_prefill_only:
            # For normal requests, sample the next token ids.
            batch_result.next_token_ids = self.model_runner.sample(
                logits_output, forward_batch
            )
        else:
            # For prefill-only requests, create dummy token IDs on CPU
            # The size should match the batch size (number of sequences), not total tokens
            batch_result.next_token_ids = torch.zeros(
                len(model_worker_batch.seq_lens),
                dtype=torch.long,
                device=model_worker_batch.input_ids.device,
            )

        return batch_result
