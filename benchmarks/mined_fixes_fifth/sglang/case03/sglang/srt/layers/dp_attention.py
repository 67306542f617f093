_ATTN_TP_SIZE = 1


def get_attention_tp_size() -> int:
    return _ATTN_TP_SIZE
