# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
import torch
from torch import nn


class GPUModelRunner:
    def __init__(self, model: nn.Module, device: torch.device, max_num_tokens: int):
        self.model = model
        self.device = device
        self.input_ids = torch.zeros(max_num_tokens, dtype=torch.int32, device=device)
        self.inputs_embeds = torch.zeros(
            max_num_tokens, 2048, dtype=torch.bfloat16, device=device
        )
        # mm_hash -> encoder output
        self.encoder_cache: dict[str, torch.Tensor] = {}

    def _gather_mm_embeddings(
        self,
        total_num_scheduled_tokens: int,
        mm_positions: list[tuple[str, int, int]],
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        mm_embeds = list[torch.Tensor]()
        is_mm_embed = torch.zeros(
            total_num_scheduled_tokens, dtype=torch.bool, device="cpu"
        )

        for mm_hash, req_start_pos, num_encoder_tokens in mm_positions:
            encoder_output = self.encoder_cache.get(mm_hash, None)
            assert encoder_output is not None, f"Encoder cache miss for {mm_hash}."
            mm_embeds_item = encoder_output[:num_encoder_tokens]
            is_mm_embed[req_start_pos : req_start_pos + num_encoder_tokens] = True
            mm_embeds.append(mm_embeds_item)

        return mm_embeds, is_mm_embed

    def _preprocess(
        self,
        num_scheduled_tokens: int,
        mm_positions: list[tuple[str, int, int]],
    ) -> torch.Tensor:
        mm_embeds, is_mm_embed = self._gather_mm_embeddings(
            num_scheduled_tokens, mm_positions
        )

        # NOTE(woosuk): To unify token ids and soft tokens (vision
        # embeddings), we always use embeddings (rather than token ids)
        # as input to the multimodal model, even when the input is text.
        inputs_embeds_scheduled = self.model.embed_input_ids(
            self.input_ids[:num_scheduled_tokens],
            multimodal_embeddings=mm_embeds,
            is_multimodal=is_mm_embed,
        )

        # TODO(woosuk): Avoid the copy. Optimize.
        self.inputs_embeds[:num_scheduled_tokens].copy_(inputs_embeds_scheduled)
        return self.inputs_embeds[:num_scheduled_tokens]
