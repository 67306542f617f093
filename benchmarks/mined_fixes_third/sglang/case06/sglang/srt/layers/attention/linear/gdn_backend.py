from typing import Tuple, Union

import torch

from sglang.srt.layers.attention.hybrid_linear_attn_backend import MambaAttnBackendBase
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.model_executor.model_runner import ModelRunner


def causal_conv1d_fn(
    x,
    weight,
    bias,
    activation=None,
    conv_states=None,
    has_initial_state=None,
    cache_indices=None,
    query_start_loc=None,
    seq_lens_cpu=None,
):
    # Stand-in for the Triton causal_conv1d_fn kernel launcher.
    return x


def fused_gdn_gating(A_log, a, b, dt_bias):
    # Stand-in for the Triton fused_gdn_gating kernel launcher.
    g = -torch.exp(A_log.float()) * torch.nn.functional.softplus(a.float() + dt_bias)
    beta = b.sigmoid()
    return g, beta


class GDNKernelDispatcher:
    def extend(self, q, k, v, g, beta, ssm_states, cache_indices, query_start_loc):
        # Stand-in for the FLA chunked prefill kernel: returns (out, last state, h).
        core_attn_out = torch.empty_like(v)
        h = torch.empty(
            (1, q.shape[1], v.shape[2], q.shape[3], v.shape[3]),
            dtype=v.dtype,
            device=v.device,
        )
        return core_attn_out, None, h


class GDNAttnBackend(MambaAttnBackendBase):
    """Attention backend for GDN (Gated Delta Network) linear attention."""

    def __init__(self, model_runner: ModelRunner):
        super().__init__(model_runner)
        self.conv_states_shape = (
            model_runner.req_to_token_pool.mamba_pool.mamba_cache.conv[0].shape
        )
        self.kernel_dispatcher = GDNKernelDispatcher()

    def forward_extend(
        self,
        layer,
        forward_batch: ForwardBatch,
        mixed_qkv: Union[torch.Tensor, Tuple[torch.Tensor, ...]],
        a: torch.Tensor,
        b: torch.Tensor,
        **kwargs,
    ):
        assert isinstance(mixed_qkv, torch.Tensor)
        seq_len = mixed_qkv.shape[0]

        forward_metadata = self.forward_metadata

        query_start_loc = forward_metadata.query_start_loc
        cache_indices = forward_metadata.mamba_cache_indices

        mamba_cache_params = self.req_to_token_pool.mamba2_layer_cache(layer.layer_id)
        conv_states = mamba_cache_params.conv[0]
        ssm_states = mamba_cache_params.temporal
        has_initial_states = forward_batch.extend_prefix_lens > 0

        mixed_qkv = mixed_qkv.transpose(0, 1)
        if (
            forward_batch.mamba_track_mask is not None
            and forward_batch.mamba_track_mask.any()
        ):
            conv_dst = forward_batch.mamba_track_indices
            mixed_qkv_to_track = mixed_qkv[
                :, forward_metadata.track_conv_indices
            ].transpose(0, 1)
            mask_indices = forward_batch.mamba_track_mask.nonzero(as_tuple=True)[0]
            conv_states[conv_dst[mask_indices]] = mixed_qkv_to_track

        mixed_qkv = causal_conv1d_fn(
            mixed_qkv,
            layer.conv_weights,
            layer.bias,
            activation=layer.activation,
            conv_states=conv_states,
            has_initial_state=has_initial_states,
            cache_indices=cache_indices,
            query_start_loc=query_start_loc,
            seq_lens_cpu=forward_batch.extend_seq_lens_cpu,
        ).transpose(0, 1)[:seq_len]

        query, key, value = torch.split(
            mixed_qkv,
            [layer.q_dim, layer.k_dim, layer.v_dim],
            dim=-1,
        )

        actual_seq_len = query.shape[0]
        query = query.view(1, actual_seq_len, layer.num_q_heads, layer.head_q_dim)
        key = key.view(1, actual_seq_len, layer.num_k_heads, layer.head_k_dim)
        value = value.view(1, actual_seq_len, layer.num_v_heads, layer.head_v_dim)

        g, beta = fused_gdn_gating(layer.A_log, a, b, layer.dt_bias)
        core_attn_out, last_recurrent_state, h = self.kernel_dispatcher.extend(
            q=query,
            k=key,
            v=value,
            g=g,
            beta=beta,
            ssm_states=ssm_states,
            cache_indices=cache_indices,
            query_start_loc=query_start_loc,
        )

        if h is not None:
            self._track_mamba_state_extend(
                forward_batch, h, ssm_states, forward_metadata
            )

        return core_attn_out
