# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
import numpy as np
import torch

from vllm.model_executor.layers.pooler.seqwise.methods import MeanPool
from vllm.model_executor.layers.pooler.special import DispatchPooler, PoolerOutput
from vllm.model_executor.layers.pooler.tokwise.methods import StepPool
from vllm.v1.utils import CpuGpuBuffer
from vllm.v1.worker.gpu_input_batch import InputBatch


class GPUModelRunner:
    def __init__(
        self,
        device: torch.device,
        max_num_reqs: int = 256,
        max_model_len: int = 8192,
        vocab_size: int = 32000,
    ):
        self.device = device
        self.pin_memory = torch.cuda.is_available()
        self.max_num_reqs = max_num_reqs

        self.input_batch = InputBatch(
            max_num_reqs=max_num_reqs,
            max_model_len=max_model_len,
            device=self.device,
            pin_memory=self.pin_memory,
            vocab_size=vocab_size,
        )
        self.query_start_loc = CpuGpuBuffer(
            max_num_reqs + 1,
            dtype=torch.int32,
            device=self.device,
            pin_memory=self.pin_memory,
        )
        self.optimistic_seq_lens_cpu = torch.zeros(max_num_reqs, dtype=torch.int32)
        self.pooler = DispatchPooler(
            {"embed": MeanPool(), "token_classify": StepPool()},
        )

    def _pool(
        self,
        hidden_states: torch.Tensor,
        num_scheduled_tokens: int,
        num_scheduled_tokens_np: np.ndarray,
    ) -> PoolerOutput:
        num_reqs = self.input_batch.num_reqs
        assert num_reqs == len(self.input_batch.pooling_params), (
            "Either all or none of the requests in a batch must be pooling request"
        )

        hidden_states = hidden_states[:num_scheduled_tokens]
        seq_lens_cpu = self.optimistic_seq_lens_cpu[:num_reqs]

        pooling_metadata = self.input_batch.get_pooling_metadata()
        pooling_metadata.build_pooling_cursor(
            num_scheduled_tokens_np,
            seq_lens_cpu,
            device=hidden_states.device,
            query_start_loc_gpu=self.query_start_loc.gpu[: num_reqs + 1],
        )

        raw_pooler_output: PoolerOutput = self.pooler(
            hidden_states=hidden_states, pooling_metadata=pooling_metadata
        )
        return raw_pooler_output
