# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project

from typing import TYPE_CHECKING

import torch

from vllm.config import VllmConfig
from vllm.utils.platform_utils import is_pin_memory_available
from vllm.v1.outputs import SamplerOutput
from vllm.v1.sample.logits_processor import LogitsProcessors, build_logitsprocs
from vllm.v1.sample.sampler import Sampler
from vllm.v1.worker.gpu_input_batch import InputBatch

if TYPE_CHECKING:
    from vllm.v1.spec_decode.metadata import SpecDecodeMetadata


class GPUModelRunner:
    # (benchmark cut: LoRAModelRunnerMixin, KVConnectorModelRunnerMixin,
    # ECConnectorModelRunnerMixin)

    def __init__(
        self,
        vllm_config: VllmConfig,
        device: torch.device,
    ):
        self.vllm_config = vllm_config
        self.model_config = vllm_config.model_config
        self.cache_config = vllm_config.cache_config
        self.scheduler_config = vllm_config.scheduler_config
        self.parallel_config = vllm_config.parallel_config

        model_config = self.model_config
        scheduler_config = self.scheduler_config
        self.device = device
        self.pin_memory = is_pin_memory_available()
        # (benchmark cut: dtype, attention, multimodal, spec decode setup)
        self.is_pooling_model = model_config.runner_type == "pooling"
        self.max_model_len = model_config.max_model_len
        self.max_num_tokens = scheduler_config.max_num_batched_tokens
        self.max_num_reqs = scheduler_config.max_num_seqs
        self.max_encoder_len = 0

        # Sampler
        self.sampler = Sampler(logprobs_mode=self.model_config.logprobs_mode)

        # (benchmark cut: EPLB, request states, encoder cache)
        logits_processors = model_config.logits_processors
        custom_logitsprocs = (
            tuple(logits_processors) if logits_processors is not None else ()
        )
        self.input_batch = InputBatch(
            max_num_reqs=self.max_num_reqs,
            # We need to use the encoder length for encoder-decoer
            # because of KV cache for cross-attention.
            max_model_len=max(self.max_model_len, self.max_encoder_len),
            max_num_batched_tokens=self.max_num_tokens,
            device=self.device,
            pin_memory=self.pin_memory,
            vocab_size=self.model_config.get_vocab_size(),
            block_sizes=[self.cache_config.block_size],
            kernel_block_sizes=[self.cache_config.block_size],
            is_spec_decode=bool(self.vllm_config.speculative_config),
            logitsprocs=build_logitsprocs(
                self.vllm_config,
                self.device,
                self.pin_memory,
                self.is_pooling_model,
                custom_logitsprocs,
            ),
            # We currently don't know whether a particular custom logits processor
            # uses output token ids so we set this conservatively.
            logitsprocs_need_output_token_ids=bool(custom_logitsprocs),
            is_pooling_model=self.is_pooling_model,
            cp_kv_cache_interleave_size=self.parallel_config.cp_kv_cache_interleave_size,
        )

    def execute_model(self, scheduler_output) -> None:
        # (benchmark cut: _update_states, _prepare_inputs, forward pass; the
        # logits are computed on the GPU from the model's hidden states)
        self.input_batch.refresh_metadata()
        hidden_states = self.model(
            input_ids=self.input_ids.gpu[: self.num_input_tokens],
            positions=self.positions.gpu[: self.num_input_tokens],
        )
        sample_hidden_states = hidden_states[self.logits_indices]
        logits = self.model.compute_logits(sample_hidden_states)
        self.execute_model_state = (scheduler_output, logits, None)

    @torch.inference_mode
    def sample_tokens(self, grammar_output) -> SamplerOutput:
        scheduler_output, logits, spec_decode_metadata = self.execute_model_state
        # Clear ephemeral state.
        self.execute_model_state = None
        # (benchmark cut: structured output bitmasks, drafting, bookkeeping)
        sampler_output = self._sample(logits, spec_decode_metadata)
        return sampler_output

    def _sample(
        self,
        logits: torch.Tensor | None,
        spec_decode_metadata: "SpecDecodeMetadata | None",
    ) -> SamplerOutput:
        # Sample the next token and get logprobs if needed.
        sampling_metadata = self.input_batch.sampling_metadata
        if spec_decode_metadata is None:
            # Update output token ids with tokens sampled in last step
            # if async scheduling and required by current sampling params.
            self.input_batch.update_async_output_token_ids()
            return self.sampler(
                logits=logits,
                sampling_metadata=sampling_metadata,
            )

        # (benchmark cut: rejection sampler path)
        raise NotImplementedError
