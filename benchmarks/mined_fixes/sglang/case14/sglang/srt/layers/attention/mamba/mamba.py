import torch
from torch import nn

from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class MambaMixer2(nn.Module):
    """
    Compute ∆, A, B, C, and D the state space parameters and compute
    the `contextualized_states`.
    """

    def __init__(self, hidden_size: int, conv_kernel_size: int, intermediate_size: int):
        super().__init__()
        self.conv_kernel_size = conv_kernel_size
        self.in_proj = nn.Linear(hidden_size, intermediate_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        output: torch.Tensor,
        layer_cache,
        forward_batch: ForwardBatch,
        mamba_cache_indices: torch.Tensor,
        query_start_loc: torch.Tensor,
    ):
        conv_states = layer_cache.conv[0]
        ssm_state = layer_cache.temporal
        projected_states = self.in_proj(hidden_states)
        hidden_states_B_C = projected_states

        if forward_batch.forward_mode.is_extend():
            varlen_state = None
            intermediate_states = True
            if (
                forward_batch.mamba_track_mask is not None
                and forward_batch.mamba_track_mask.any()
            ):
                conv_dst = forward_batch.mamba_track_indices
                mask_indices = forward_batch.mamba_track_mask.nonzero(as_tuple=True)[0]
                hidden_states_B_C_to_track = hidden_states_B_C[
                    query_start_loc[1:][mask_indices] - self.conv_kernel_size + 1
                ]
                conv_states[conv_dst[mask_indices]] = hidden_states_B_C_to_track
                ssm_state[conv_dst[mask_indices]] = ssm_state[
                    mamba_cache_indices[mask_indices]
                ]
        output.copy_(hidden_states_B_C)
        return output
