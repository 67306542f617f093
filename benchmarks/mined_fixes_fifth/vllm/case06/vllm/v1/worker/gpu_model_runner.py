# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to model loading, the input_ids buffers and the embedding step of
# execute_model for a multimodal model (encoder outputs come from the
# encoder cache; the encoder run itself is dropped).
import numpy as np
import torch

from vllm.config import VllmConfig
from vllm.model_executor.model_loader import get_model


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
        self.dtype = torch.bfloat16
        self.max_num_tokens = self.scheduler_config.max_num_batched_tokens
        self.hidden_size = (
            self.model_config.hf_config.text_config.hidden_size)
        self.is_multimodal_model = True

        # mm_hash ->  encoder_output
        self.encoder_cache: dict[str, torch.Tensor] = {}

        # Persistent buffers for CUDA graphs.
        self.input_ids = torch.zeros(self.max_num_tokens,
                                     dtype=torch.int32,
                                     device=self.device)
        self.inputs_embeds = torch.zeros(
            (self.max_num_tokens, self.hidden_size),
            dtype=self.dtype,
            device=self.device)

        # OPTIMIZATION: Cache the tensors rather than creating them every step.
        self.input_ids_cpu = torch.zeros(self.max_num_tokens,
                                         dtype=torch.int32,
                                         device="cpu",
                                         pin_memory=self.pin_memory)
        self.input_ids_np = self.input_ids_cpu.numpy()

    def load_model(self) -> None:
        self.model = get_model(vllm_config=self.vllm_config)

    def _gather_mm_embeddings(self, mm_hashes: list[str]) -> list[torch.Tensor]:
        mm_embeds: list[torch.Tensor] = []
        for mm_hash in mm_hashes:
            encoder_output = self.encoder_cache.get(mm_hash, None)
            assert encoder_output is not None,\
                f"Encoder cache miss for {mm_hash}."
            mm_embeds.append(encoder_output)
        return mm_embeds

    def execute_model(self, token_ids: np.ndarray, mm_hashes: list[str]):
        num_scheduled_tokens = len(token_ids)
        self.input_ids_np[:num_scheduled_tokens] = token_ids
        # Copy the tensors to the GPU.
        self.input_ids[:num_scheduled_tokens].copy_(
            self.input_ids_cpu[:num_scheduled_tokens], non_blocking=True)

        if self.is_multimodal_model:
            mm_embeds = self._gather_mm_embeddings(mm_hashes)
        else:
            mm_embeds = []

        if self.is_multimodal_model:
            # NOTE(woosuk): To unify token ids and soft tokens (vision
            # embeddings), we always use embeddings (rather than token ids)
            # as input to the multimodal model, even when the input is text.
            input_ids = self.input_ids[:num_scheduled_tokens]

            inputs_embeds = self.model.get_input_embeddings(
                input_ids=input_ids,
                multimodal_embeddings=mm_embeds or None,
            )

            # TODO(woosuk): Avoid the copy. Optimize.
            self.inputs_embeds[:num_scheduled_tokens].copy_(inputs_embeds)
            inputs_embeds = self.inputs_embeds[:num_scheduled_tokens]
        return inputs_embeds
