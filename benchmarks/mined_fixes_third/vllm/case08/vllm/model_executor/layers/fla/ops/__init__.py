# SPDX-License-Identifier: Apache-2.0
# Stubs of the FLA Triton ops (kernel bodies cut).
import torch


def chunk_gated_delta_rule(
    q, k, v, g, beta, initial_state, output_final_state, cu_seqlens=None,
    head_first=False, use_qk_l2norm_in_kernel=False,
):
    return torch.empty_like(v), initial_state


def fused_recurrent_gated_delta_rule(
    q, k, v, g, beta, initial_state, inplace_final_state=True, cu_seqlens=None,
    ssm_state_indices=None, num_accepted_tokens=None, use_qk_l2norm_in_kernel=False,
):
    return torch.empty_like(v), initial_state
