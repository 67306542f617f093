# SPDX-License-Identifier: Apache-2.0
# Cut down to the helper flashinfer.py imports.


def use_cascade_attention(
    common_prefix_len: int,
    query_lens,
    num_query_heads: int,
    num_kv_heads: int,
    use_alibi: bool,
    use_sliding_window: bool,
    use_local_attention: bool,
    num_sms: int,
) -> bool:
    # (benchmark cut: the cascade-attention cost model)
    return False
