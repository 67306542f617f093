# SPDX-License-Identifier: Apache-2.0
# Cut down to the forward / compute_logits / sample steps of execute_model;
# scheduling state, attention metadata, spec decode and structured output
# are dropped.
import numpy as np
import torch

from vllm.config import VllmConfig
from vllm.model_executor.model_loader import get_model
from vllm.v1.outputs import SamplerOutput
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
        self.device = device
        self.pin_memory = True
        self.max_model_len = self.model_config.max_model_len
        self.max_num_tokens = self.scheduler_config.max_num_batched_tokens
        self.max_num_reqs = self.scheduler_config.max_num_seqs

        # Request states.
        # Persistent batch.
        self.input_batch = InputBatch(
            max_num_reqs=self.max_num_reqs,
            max_model_len=self.max_model_len,
            max_num_batched_tokens=self.max_num_tokens,
            device=self.device,
            pin_memory=self.pin_memory,
            vocab_size=self.model_config.get_vocab_size(),
        )

        # Persistent buffers for CUDA graphs.
        self.input_ids = torch.zeros(self.max_num_tokens,
                                     dtype=torch.int32,
                                     device=self.device)
        self.positions = torch.zeros(self.max_num_tokens,
                                     dtype=torch.int64,
                                     device=self.device)

    def load_model(self) -> None:
        self.model = get_model(vllm_config=self.vllm_config)

    @torch.inference_mode()
    def execute_model(self, num_scheduled_tokens: int,
                      logits_indices: torch.Tensor) -> SamplerOutput:
        input_ids = self.input_ids[:num_scheduled_tokens]
        positions = self.positions[:num_scheduled_tokens]

        hidden_states = self.model(
            input_ids=input_ids,
            positions=positions,
        )

        hidden_states = hidden_states[:num_scheduled_tokens]
        sample_hidden_states = hidden_states[logits_indices]
        logits = self.model.compute_logits(sample_hidden_states, None)

        # Sample the next token and get logprobs if needed.
        sampling_metadata = self.input_batch.sampling_metadata
        sampler_output = self.model.sample(
            logits=logits,
            sampling_metadata=sampling_metadata,
        )
        return sampler_output
