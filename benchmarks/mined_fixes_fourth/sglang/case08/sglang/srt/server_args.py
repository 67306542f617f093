from dataclasses import dataclass


@dataclass
class ServerArgs:
    device: str = "cuda"
    attention_backend: str = "aiter"
    max_running_requests: int = 64
    context_length: int = 4096
