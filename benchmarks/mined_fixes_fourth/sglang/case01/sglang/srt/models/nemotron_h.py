import torch
from torch import nn

from sglang.srt.layers.attention.hybrid_linear_attn_backend import (
    HybridLinearAttnBackend,
    Mamba2AttnBackend,
)
from sglang.srt.layers.attention.mamba.mamba import MambaMixer2
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.model_executor.forward_context import get_attn_backend


class NemotronHMambaDecoderLayer(nn.Module):
    def __init__(self, hidden_size: int, layer_idx: int) -> None:
        super().__init__()
        self.layer_id = layer_idx
        self.mixer = MambaMixer2(
            hidden_size=hidden_size,
            intermediate_size=hidden_size * 2,
            conv_dim=hidden_size * 2,
        )
        self.norm = nn.LayerNorm(hidden_size)

    def _forward_mamba(
        self,
        hidden_states: torch.Tensor,
        forward_batch: ForwardBatch,
    ) -> torch.Tensor:
        """Core Mamba forward logic, called directly or via split op."""
        attn_backend = get_attn_backend()
        assert isinstance(attn_backend, HybridLinearAttnBackend)
        assert isinstance(attn_backend.linear_attn_backend, Mamba2AttnBackend)
        output = attn_backend.linear_attn_backend.forward(
            mixer=self.mixer,
            layer_id=self.layer_id,
            hidden_states=hidden_states,
            output=None,
            forward_batch=forward_batch,
            use_triton_causal_conv=True,
        )
        return output

    def forward(
        self,
        *,
        hidden_states: torch.Tensor,
        residual: torch.Tensor | None,
        forward_batch: ForwardBatch,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if residual is None:
            residual = hidden_states
        else:
            hidden_states = hidden_states + residual
            residual = hidden_states
        hidden_states = self.norm(hidden_states)
        output = self._forward_mamba(hidden_states, forward_batch)
        return output, residual


class NemotronHModel(nn.Module):
    def __init__(self, vocab_size: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab_size, hidden_size)
        self.layers = nn.ModuleList(
            [NemotronHMambaDecoderLayer(hidden_size, i) for i in range(num_layers)]
        )
        self.start_layer = 0
        self.end_layer = num_layers

    def forward(self, input_ids, positions, forward_batch: ForwardBatch):
        hidden_states = self.embed_tokens(input_ids)
        residual = None
        for i in range(self.start_layer, self.end_layer):
            layer = self.layers[i]
            hidden_states, residual = layer.forward(
                hidden_states=hidden_states,
                residual=residual,
                forward_batch=forward_batch,
            )
        return hidden_states


class NemotronHForCausalLM(nn.Module):
    def __init__(self, vocab_size: int = 1024, hidden_size: int = 64, num_layers: int = 2):
        super().__init__()
        self.model = NemotronHModel(vocab_size, hidden_size, num_layers)

    @torch.no_grad()
    def forward(self, input_ids, positions, forward_batch: ForwardBatch):
        return self.model(input_ids, positions, forward_batch)
