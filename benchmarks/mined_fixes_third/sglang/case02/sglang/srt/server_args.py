from dataclasses import dataclass


@dataclass
class ServerArgs:
    device: str = "cuda"
    chunked_prefill_size: int = 8192
    enable_adaptive_dispatch_to_encoder: bool = False
    language_only: bool = False


_global_server_args = None


def set_global_server_args_for_scheduler(server_args: ServerArgs):
    global _global_server_args
    _global_server_args = server_args


def get_global_server_args() -> ServerArgs:
    return _global_server_args
