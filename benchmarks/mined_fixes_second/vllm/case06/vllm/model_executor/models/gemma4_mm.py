# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
import torch
from torch import nn

from .gemma4 import Gemma4ForCausalLM
from .interfaces import MultiModalEmbeddings, SupportsMultiModal


class Gemma4TextConfig:
    vocab_size: int = 262144
    hidden_size: int = 2048
    num_hidden_layers: int = 35
    hidden_size_per_layer_input: int | None = 256


class Gemma4Config:
    text_config = Gemma4TextConfig()


class Gemma4ForConditionalGeneration(
    nn.Module,
    SupportsMultiModal,
):
    def __init__(self, config: Gemma4Config, max_num_batched_tokens: int):
        super().__init__()
        self.config = config
        text_config = config.text_config
        self.language_model = Gemma4ForCausalLM(
            text_config.vocab_size,
            text_config.hidden_size,
            text_config.num_hidden_layers,
            text_config.hidden_size_per_layer_input or 0,
        )

        # Some variants have hidden_size_per_layer_input=None (no PLE).
        ple_dim = config.text_config.hidden_size_per_layer_input
        if ple_dim is not None:
            self.per_layer_embeddings = torch.zeros(
                max_num_batched_tokens,
                config.text_config.num_hidden_layers,
                ple_dim,
                device=(self.language_model.model.embed_tokens.weight.device),
                dtype=(self.language_model.model.embed_tokens.weight.dtype),
            )
        else:
            self.per_layer_embeddings = None

    def get_language_model(self) -> torch.nn.Module:
        return self.language_model

    def embed_input_ids(
        self,
        input_ids: torch.Tensor,
        multimodal_embeddings: MultiModalEmbeddings | None = None,
        *,
        is_multimodal: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # Cache per-layer embeddings (PLE) for the language model's
        # forward pass.  During profiling embed_input_ids is not called,
        # so the pre-allocated zeros are used instead.
        if self.per_layer_embeddings is not None:
            # Mask multimodal tokens (image/audio) to 0 for PLE
            # computation (using token_type_ids == 0 as text_mask).
            # Replicate this: map image token positions to token 0.
            if is_multimodal is not None:
                is_multimodal = is_multimodal.to(input_ids.device)  # SYNC (pre-fix, #39234)
                ple_input_ids = torch.where(
                    is_multimodal, torch.zeros_like(input_ids), input_ids
                )
            else:
                ple_input_ids = input_ids

            per_layer_inputs = self.language_model.model.get_per_layer_inputs(
                ple_input_ids
            )
            if per_layer_inputs is not None:
                per_layer_inputs = per_layer_inputs.reshape(
                    -1,
                    self.config.text_config.num_hidden_layers,
                    self.config.text_config.hidden_size_per_layer_input,
                )
                self.per_layer_embeddings[: per_layer_inputs.shape[0]].copy_(
                    per_layer_inputs
                )

        if multimodal_embeddings is None or is_multimodal is None:
            return super().embed_input_ids(input_ids)

        return super().embed_input_ids(
            input_ids,
            multimodal_embeddings=multimodal_embeddings,
            is_multimodal=is_multimodal,
        )
