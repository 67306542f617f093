# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Stub of the Triton unified attention kernel launcher (kernel body cut).
import torch


def unified_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    cu_seqlens_q: torch.Tensor,
    max_seqlen_q: int,
    seqused_k: torch.Tensor,
    max_seqlen_k: int,
    softmax_scale: float,
    causal: bool,
    window_size,
    block_table: torch.Tensor,
    softcap: float,
    q_descale,
    k_descale,
    v_descale,
    alibi_slopes=None,
    seq_threshold_3D=None,
    num_par_softmax_segments=None,
    softmax_segm_output=None,
    softmax_segm_max=None,
    softmax_segm_expsum=None,
    sinks=None,
    output_scale=None,
    mm_prefix_range=None,
):
    out.copy_(q)
