# (benchmark cut: stand-in for the real runtime context; returns the server args / parallel info)
from dataclasses import dataclass
from typing import Optional


@dataclass
class _ServerArgs:
    mm_attention_backend: Optional[str] = None
    mm_enable_dp_encoder: bool = False
    rl_on_policy_target: Optional[str] = None


@dataclass
class _Parallel:
    attn_tp_size: int = 1
    attn_tp_rank: int = 0


_server_args = _ServerArgs()
_parallel = _Parallel()


def get_server_args():
    return _server_args


def get_parallel():
    return _parallel
