import torch
from torch import nn

from sglang.srt.layers.radix_attention import RadixAttention
from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class DeepseekV2AttentionMLA(nn.Module):
    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        qk_nope_head_dim: int,
        qk_rope_head_dim: int,
        v_head_dim: int,
        kv_lora_rank: int,
        layer_id: int,
    ):
        super().__init__()
        self.num_local_heads = num_heads
        self.qk_nope_head_dim = qk_nope_head_dim
        self.qk_rope_head_dim = qk_rope_head_dim
        self.qk_head_dim = qk_nope_head_dim + qk_rope_head_dim
        self.v_head_dim = v_head_dim
        self.kv_lora_rank = kv_lora_rank
        self.q_proj = nn.Linear(hidden_size, num_heads * self.qk_head_dim)
        self.kv_a_proj_with_mqa = nn.Linear(hidden_size, kv_lora_rank + qk_rope_head_dim)
        self.kv_b_proj = nn.Linear(
            kv_lora_rank, num_heads * (qk_nope_head_dim + v_head_dim)
        )
        self.scaling = self.qk_head_dim**-0.5
        # MHA attention used for prefill without prefix (forward_normal).
        self.attn_mha = RadixAttention(
            num_heads,
            self.qk_head_dim,
            self.scaling,
            num_kv_heads=num_heads,
            layer_id=layer_id,
            v_head_dim=v_head_dim,
        )

    def forward_normal(
        self,
        positions: torch.Tensor,
        hidden_states: torch.Tensor,
        forward_batch: ForwardBatch,
    ):
        # Reduced forward_normal_prepare + forward_normal_core (RoPE, q_a
        # layernorm and the KV-cache latent write are cut).
        q = self.q_proj(hidden_states).view(-1, self.num_local_heads, self.qk_head_dim)
        latent_cache = self.kv_a_proj_with_mqa(hidden_states)
        kv_a, k_pe = latent_cache.split(
            [self.kv_lora_rank, self.qk_rope_head_dim], dim=-1
        )
        kv = self.kv_b_proj(kv_a).view(
            -1, self.num_local_heads, self.qk_nope_head_dim + self.v_head_dim
        )
        k_nope = kv[..., : self.qk_nope_head_dim]
        v = kv[..., self.qk_nope_head_dim :]
        k = torch.empty_like(q)
        k[..., : self.qk_nope_head_dim] = k_nope
        k[..., self.qk_nope_head_dim :] = k_pe.unsqueeze(1)

        attn_output = self.attn_mha(q, k, v, forward_batch, save_kv_cache=False)
        return attn_output.reshape(-1, self.num_local_heads * self.v_head_dim)


class DeepseekV2ForCausalLM(nn.Module):
    def __init__(self, vocab_size=1024, hidden_size=256, num_layers=2):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab_size, hidden_size)
        self.layers = nn.ModuleList(
            [
                DeepseekV2AttentionMLA(
                    hidden_size,
                    num_heads=16,
                    qk_nope_head_dim=128,
                    qk_rope_head_dim=64,
                    v_head_dim=128,
                    kv_lora_rank=512,
                    layer_id=i,
                )
                for i in range(num_layers)
            ]
        )

    @torch.no_grad()
    def forward(self, input_ids, positions, forward_batch: ForwardBatch):
        hidden_states = self.embed_tokens(input_ids)
        for layer in self.layers:
            attn = layer.forward_normal(positions, hidden_states, forward_batch)
            hidden_states = hidden_states + attn[:, : hidden_states.shape[-1]]
        return hidden_states
