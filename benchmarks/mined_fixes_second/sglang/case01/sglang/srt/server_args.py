import dataclasses
from typing import Optional


@dataclasses.dataclass
class ServerArgs:
    speculative_accept_threshold_single: float = 1.0
    speculative_accept_threshold_acc: float = 1.0


_global_server_args: Optional[ServerArgs] = None


def get_global_server_args() -> ServerArgs:
    return _global_server_args
