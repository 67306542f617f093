# SPDX-License-Identifier: Apache-2.0

from typing import TYPE_CHECKING

import torch

from vllm.config import VllmConfig
from vllm.utils import is_pin_memory_available
from vllm.v1.kv_cache_interface import KVCacheConfig
from vllm.v1.outputs import ModelRunnerOutput
from vllm.v1.sample.sampler import Sampler
from vllm.v1.worker.gpu_input_batch import InputBatch

if TYPE_CHECKING:
    from vllm.v1.core.sched.output import SchedulerOutput


class GPUModelRunner:
    # (benchmark cut: LoRAModelRunnerMixin)

    def __init__(
        self,
        vllm_config: VllmConfig,
        device: torch.device,
    ):
        self.vllm_config = vllm_config
        self.model_config = vllm_config.model_config
        self.scheduler_config = vllm_config.scheduler_config

        model_config = self.model_config
        scheduler_config = self.scheduler_config
        self.device = device
        self.pin_memory = is_pin_memory_available()
        # (benchmark cut: dtype, attention, multimodal, spec decode setup)
        self.max_model_len = model_config.max_model_len
        self.max_num_tokens = scheduler_config.max_num_batched_tokens
        self.max_num_reqs = scheduler_config.max_num_seqs

        # Sampler
        self.sampler = Sampler()

    def initialize_kv_cache(self, kv_cache_config: KVCacheConfig) -> None:
        # (benchmark cut: the checks and attention backend setup around it)
        self.input_batch = InputBatch(
            max_num_reqs=self.max_num_reqs,
            max_model_len=self.max_model_len,
            max_num_batched_tokens=self.max_num_tokens,
            device=self.device,
            pin_memory=self.pin_memory,
            vocab_size=self.model_config.get_vocab_size(),
            kv_cache_config=kv_cache_config,
        )

    @torch.inference_mode()
    def execute_model(
        self,
        scheduler_output: "SchedulerOutput",
    ) -> ModelRunnerOutput:
        # (benchmark cut: _update_states, _prepare_inputs, encoder, the model
        # forward pass and PP; logits_indices is a device tensor)
        hidden_states = self.model(
            input_ids=self.input_ids[:self.num_input_tokens],
            positions=self.positions[:self.num_input_tokens],
        )
        sample_hidden_states = hidden_states[self.logits_indices]
        logits = self.model.compute_logits(sample_hidden_states, None)

        # (benchmark cut: structured output bitmasks)

        # Sample the next token and get logprobs if needed.
        sampling_metadata = self.input_batch.sampling_metadata
        sampler_output = self.sampler(
            logits=logits,
            sampling_metadata=sampling_metadata,
        )
        # (benchmark cut: spec decode path, output bookkeeping)
        return sampler_output
