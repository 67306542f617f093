from dataclasses import dataclass


@dataclass
class ServerArgs:
    model_path: str = ""
    device: str = "cuda"
    page_size: int = 1
    max_running_requests: int = 256
    context_length: int = 4096


_global_server_args = None


def set_global_server_args(server_args: ServerArgs):
    global _global_server_args
    _global_server_args = server_args


def get_server_args() -> ServerArgs:
    return _global_server_args
