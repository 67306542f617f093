from dataclasses import dataclass


@dataclass
class ServerArgs:
    model_path: str = ""
    device: str = "cuda"
    page_size: int = 64
    attention_backend: str = "trtllm_mla"
    disable_chunked_prefix_cache: bool = False
    speculative_num_draft_tokens: int = None


_global_server_args = None


def set_global_server_args(server_args: ServerArgs):
    global _global_server_args
    _global_server_args = server_args


def get_global_server_args() -> ServerArgs:
    return _global_server_args
