from typing import Optional

import torch
from torch import nn

from sglang.srt.layers.attention.mamba.mamba2_metadata import Mamba2Metadata
from sglang.srt.mem_cache.memory_pool import MambaPool
from sglang.srt.model_executor.forward_batch_info import ForwardBatch


def causal_conv1d_fn_triton(x, weight, bias, **kwargs):
    # Stand-in for the Triton causal-conv kernel launch.
    return x


class MambaMixer2(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, conv_dim: int):
        super().__init__()
        self.intermediate_size = intermediate_size
        self.conv_dim = conv_dim
        self.in_proj = nn.Linear(hidden_size, intermediate_size + conv_dim)
        self.out_proj = nn.Linear(intermediate_size, hidden_size)
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, 4, groups=conv_dim)

    def forward(
        self,
        *,
        hidden_states: torch.Tensor,
        output: Optional[torch.Tensor] = None,
        layer_cache: MambaPool.State,
        metadata: Mamba2Metadata,
        forward_batch: ForwardBatch,
        mup_vector: Optional[torch.Tensor] = None,
        use_triton_causal_conv: bool = False,
    ):
        state_indices_tensor = metadata.mamba_cache_indices
        conv_state = layer_cache.conv[0]
        ssm_state = layer_cache.temporal
        intermediate_states = None

        query_start_loc = metadata.query_start_loc

        # 1. Gated MLP's linear projection
        projected_states = self.in_proj(hidden_states)
        gate, hidden_states_B_C = torch.split(
            projected_states, [self.intermediate_size, self.conv_dim], dim=-1
        )

        num_prefills = metadata.num_prefills  # request count
        num_prefill_tokens = metadata.num_prefill_tokens  # token count
        has_prefill = num_prefills > 0
        hidden_states_B_C_p = hidden_states_B_C[:num_prefill_tokens]
        state_indices_tensor_p = state_indices_tensor[:num_prefills]
        query_start_loc_p = query_start_loc[: num_prefills + 1] if has_prefill else None

        # Process prefill requests
        if has_prefill:
            mixed_metadata = metadata.mixed_metadata
            assert mixed_metadata is not None
            has_initial_states_p = mixed_metadata.has_initial_states
            cache_indices = state_indices_tensor_p
            x = hidden_states_B_C_p.transpose(
                0, 1
            )  # this is the form that causal-conv see
            if (  # SYNC (pre-fix, #32589)
                forward_batch.mamba_track_mask is not None
                and forward_batch.mamba_track_mask.any()
                and metadata.track_conv_indices is not None
            ):
                x_to_track = x[:, metadata.track_conv_indices].transpose(0, 1)
                mask_indices = forward_batch.mamba_track_mask.nonzero(as_tuple=True)[0]  # SYNC (pre-fix, #32589)
                conv_state[forward_batch.mamba_track_indices[mask_indices]] = x_to_track
            hidden_states_B_C_p = causal_conv1d_fn_triton(
                x,
                self.conv1d.weight,
                self.conv1d.bias,
                conv_states=conv_state,
                has_initial_state=has_initial_states_p,
                cache_indices=cache_indices,
                query_start_loc=query_start_loc_p,
                seq_lens_cpu=mixed_metadata.extend_seq_lens_cpu,
            ).transpose(0, 1)[:num_prefill_tokens]
            # The SSD chunk scan (mamba_chunk_scan_combined) is cut; it returns
            # the per-chunk states used for prefix-cache tracking.
            intermediate_states = ssm_state[state_indices_tensor_p].unsqueeze(0)

        out = self.out_proj(gate * hidden_states_B_C_p[:, : self.intermediate_size])
        return out, intermediate_states
