from dataclasses import dataclass


@dataclass
class ServerArgs:
    device: str = "cuda"
    max_running_requests: int = 64
    context_length: int = 4096
    speculative_algorithm: str = "DFLASH"
