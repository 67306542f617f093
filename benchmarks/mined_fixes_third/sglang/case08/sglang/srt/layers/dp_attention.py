from __future__ import annotations

from enum import IntEnum, auto
from typing import List

_ATTN_TP_SIZE = 1
_ATTN_DP_RANK = 0
_ATTN_DP_SIZE = 1


class DpPaddingMode(IntEnum):

    # Padding tokens to max length and then gather tokens using `all_gather_into_tensor`
    MAX_LEN = auto()
    # Padding tokens to sum length and then gather tokens using `all_reduce`
    SUM_LEN = auto()

    def is_max_len(self):
        return self == DpPaddingMode.MAX_LEN

    def is_sum_len(self):
        return self == DpPaddingMode.SUM_LEN

    @classmethod
    def get_dp_padding_mode(
        cls, is_extend_in_batch, global_num_tokens: List[int]
    ) -> DpPaddingMode:
        if is_extend_in_batch:
            return DpPaddingMode.SUM_LEN

        # we choose the mode that minimizes the communication cost
        max_len = max(global_num_tokens)
        sum_len = sum(global_num_tokens)
        if sum_len * 2 > max_len * get_attention_dp_size():
            return cls.MAX_LEN
        else:
            return cls.SUM_LEN


def get_attention_tp_size() -> int:
    return _ATTN_TP_SIZE


def get_attention_dp_rank() -> int:
    return _ATTN_DP_RANK


def get_attention_dp_size() -> int:
    return _ATTN_DP_SIZE


def set_dp_buffer_len(global_dp_buffer_len: int, local_dp_buffer_len: int, global_num_tokens=None):
    pass
