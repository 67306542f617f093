# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to the path that brings the model's logits to the sampler:
# execute_model computes them on the GPU, sample_tokens hands them to
# Sampler.forward. Scheduler output, attention metadata, spec decode,
# pipeline parallelism and async scheduling are dropped.
import numpy as np
import torch
import torch.nn as nn

from vllm.config import VllmConfig
from vllm.model_executor.model_loader import get_model_loader
from vllm.utils.platform_utils import is_pin_memory_available
from vllm.v1.outputs import SamplerOutput
from vllm.v1.sample.sampler import Sampler
from vllm.v1.utils import CpuGpuBuffer
from vllm.v1.worker.gpu_input_batch import InputBatch


class GPUModelRunner:
    def __init__(
        self,
        vllm_config: VllmConfig,
        device: torch.device,
    ):
        self.vllm_config = vllm_config
        self.model_config = vllm_config.model_config
        self.scheduler_config = vllm_config.scheduler_config
        self.load_config = vllm_config.load_config
        self.device = device
        self.pin_memory = is_pin_memory_available()
        self.max_num_reqs = self.scheduler_config.max_num_seqs
        self.max_num_tokens = self.scheduler_config.max_num_batched_tokens

        self.input_batch = InputBatch(
            max_num_reqs=self.max_num_reqs,
            device=self.device,
            pin_memory=self.pin_memory,
        )
        self.sampler = Sampler(logprobs_mode=self.model_config.logprobs_mode)

        # Persistent buffers for CUDA graphs.
        self.input_ids = torch.zeros(
            self.max_num_tokens, dtype=torch.int32, device=self.device
        )
        self.positions = torch.zeros(
            self.max_num_tokens, dtype=torch.int64, device=self.device
        )
        self.query_start_loc = self._make_buffer(
            self.max_num_reqs + 1, dtype=torch.int32
        )
        self.execute_model_state = None

    def _make_buffer(
        self, *size: int | torch.SymInt, dtype: torch.dtype, numpy: bool = True
    ) -> CpuGpuBuffer:
        return CpuGpuBuffer(
            *size,
            dtype=dtype,
            device=self.device,
            pin_memory=self.pin_memory,
            with_numpy=numpy,
        )

    def load_model(self, load_dummy_weights: bool = False) -> None:
        if load_dummy_weights:
            self.load_config.load_format = "dummy"
        model_loader = get_model_loader(self.load_config)
        self.model = model_loader.load_model(
            vllm_config=self.vllm_config, model_config=self.model_config
        )

    def get_model(self) -> nn.Module:
        return self.model

    def _sample(
        self,
        logits: torch.Tensor | None,
        spec_decode_metadata=None,
    ) -> SamplerOutput:
        # Sample the next token and get logprobs if needed.
        sampling_metadata = self.input_batch.sampling_metadata
        if spec_decode_metadata is None:
            return self.sampler(
                logits=logits,
                sampling_metadata=sampling_metadata,
            )
        raise NotImplementedError("benchmark cut: rejection sampler")

    def _prepare_inputs(
        self, num_scheduled_tokens: np.ndarray
    ) -> tuple[torch.Tensor, int]:
        num_reqs = len(num_scheduled_tokens)
        cu_num_tokens = np.cumsum(num_scheduled_tokens)

        # Prepare the attention metadata.
        self.query_start_loc.np[0] = 0
        self.query_start_loc.np[1 : num_reqs + 1] = cu_num_tokens
        self.query_start_loc.copy_to_gpu()
        query_start_loc = self.query_start_loc.gpu[: num_reqs + 1]

        logits_indices = query_start_loc[1:] - 1
        return logits_indices, int(cu_num_tokens[-1])

    @torch.inference_mode()
    def execute_model(self, num_scheduled_tokens_np: np.ndarray) -> None:
        logits_indices, num_tokens = self._prepare_inputs(num_scheduled_tokens_np)
        hidden_states = self.model(
            input_ids=self.input_ids[:num_tokens],
            positions=self.positions[:num_tokens],
        )
        sample_hidden_states = hidden_states[logits_indices]
        logits = self.model.compute_logits(sample_hidden_states)
        self.execute_model_state = (logits, None)

    @torch.inference_mode()
    def sample_tokens(self, grammar_output=None) -> SamplerOutput:
        # Unpack ephemeral state.
        logits, spec_decode_metadata = self.execute_model_state
        # Clear ephemeral state.
        self.execute_model_state = None
        sampler_output = self._sample(logits, spec_decode_metadata)
        return sampler_output
