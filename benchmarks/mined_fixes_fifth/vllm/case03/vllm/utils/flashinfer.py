# SPDX-License-Identifier: Apache-2.0
# Cut down: the TRTLLM-gen attention selection (Blackwell, SM100) is reduced
# to its outcome on such a GPU.
import torch


def supports_trtllm_attention() -> bool:
    # (benchmark cut: checks for SM100 and the FlashInfer cubin downloads)
    return True


def use_trtllm_attention(
    num_qo_heads: int,
    num_kv_heads: int,
    num_tokens: int,
    max_seq_len: int,
    kv_cache_dtype: str,
    q_dtype: torch.dtype,
    has_sinks: bool = False,
) -> bool:
    # (benchmark cut: env overrides and the auto-detection heuristic)
    return supports_trtllm_attention()


def flashinfer_disable_q_quantization() -> bool:
    return False

