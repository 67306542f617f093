# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down: projections, conv1d, the spec-decode and decode branches, the
# FlashInfer prefill path (forward_cuda, used by default on SM90) and the
# custom-op registration are dropped. Only the FLA/Triton prefill path is kept.
import torch
import torch.nn as nn

from vllm.forward_context import get_forward_context
from vllm.model_executor.layers.fla.ops import (
    chunk_gated_delta_rule as fla_chunk_gated_delta_rule,
)
from vllm.v1.attention.backends.gdn_attn import GDNAttentionMetadata


class ChunkGatedDeltaRule(nn.Module):
    def forward(self, *args, **kwargs):
        return self.forward_native(*args, **kwargs)

    def forward_native(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        g: torch.Tensor,
        beta: torch.Tensor,
        initial_state: torch.Tensor,
        output_final_state: bool,
        cu_seqlens: torch.Tensor | None = None,
        use_qk_l2norm_in_kernel: bool = True,
    ):
        return fla_chunk_gated_delta_rule(
            q=q,
            k=k,
            v=v,
            g=g,
            beta=beta,
            initial_state=initial_state,
            output_final_state=output_final_state,
            cu_seqlens=cu_seqlens,
            use_qk_l2norm_in_kernel=use_qk_l2norm_in_kernel,
        )


class GatedDeltaNetAttention(nn.Module):
    def __init__(self, prefix: str, num_v_heads: int, head_k_dim: int):
        super().__init__()
        self.prefix = prefix
        self.num_v_heads = num_v_heads
        self.head_k_dim = head_k_dim
        self.chunk_gated_delta_rule = ChunkGatedDeltaRule()
        self.kv_cache = [torch.tensor([]), torch.tensor([])]

    def forward(
        self,
        mixed_qkv: torch.Tensor,
        b: torch.Tensor,
        a: torch.Tensor,
        core_attn_out: torch.Tensor,
    ):
        return self._forward_core(mixed_qkv, b, a, core_attn_out)

    def _forward_core(
        self,
        mixed_qkv: torch.Tensor,
        b: torch.Tensor,
        a: torch.Tensor,
        core_attn_out: torch.Tensor,
    ):
        forward_context = get_forward_context()
        attn_metadata = forward_context.attn_metadata

        if attn_metadata is None:
            return

        assert isinstance(attn_metadata, dict)
        attn_metadata = attn_metadata[self.prefix]
        assert isinstance(attn_metadata, GDNAttentionMetadata)

        has_initial_state = attn_metadata.has_initial_state
        non_spec_query_start_loc = attn_metadata.non_spec_query_start_loc
        non_spec_state_indices_tensor = attn_metadata.non_spec_state_indices_tensor  # noqa: E501
        self_kv_cache = self.kv_cache
        ssm_state = self_kv_cache[1]

        num_tokens = mixed_qkv.shape[0]
        query_non_spec = key_non_spec = value_non_spec = mixed_qkv.view(
            1, num_tokens, self.num_v_heads, self.head_k_dim
        )
        g_non_spec = a.view(1, num_tokens, self.num_v_heads)
        beta_non_spec = b.view(1, num_tokens, self.num_v_heads)

        # 2.2: Process the remaining part
        if attn_metadata.num_prefills > 0:
            initial_state = ssm_state[non_spec_state_indices_tensor].contiguous()
            (
                core_attn_out_non_spec,
                last_recurrent_state,
            ) = self.chunk_gated_delta_rule(
                q=query_non_spec,
                k=key_non_spec,
                v=value_non_spec,
                g=g_non_spec,
                beta=beta_non_spec,
                initial_state=initial_state,
                output_final_state=True,
                cu_seqlens=non_spec_query_start_loc,
                use_qk_l2norm_in_kernel=False,
            )
            # Init cache
            ssm_state[non_spec_state_indices_tensor] = last_recurrent_state.to(
                ssm_state.dtype
            )
            core_attn_out[:num_tokens] = core_attn_out_non_spec.view(num_tokens, -1)
