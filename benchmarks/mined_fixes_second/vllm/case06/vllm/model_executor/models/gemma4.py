# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
import torch
import torch.nn as nn


class Gemma4Model(nn.Module):
    def __init__(self, vocab_size: int, hidden_size: int, num_layers: int, ple_dim: int):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab_size, hidden_size)
        self.embed_tokens_per_layer = nn.Embedding(vocab_size, num_layers * ple_dim)

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(input_ids)

    def get_per_layer_inputs(self, input_ids: torch.Tensor) -> torch.Tensor | None:
        return self.embed_tokens_per_layer(input_ids)


class Gemma4ForCausalLM(nn.Module):
    def __init__(self, vocab_size: int, hidden_size: int, num_layers: int, ple_dim: int):
        super().__init__()
        self.model = Gemma4Model(vocab_size, hidden_size, num_layers, ple_dim)

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed_input_ids(input_ids)
