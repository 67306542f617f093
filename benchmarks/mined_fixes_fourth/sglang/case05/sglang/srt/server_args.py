from dataclasses import dataclass


@dataclass
class ServerArgs:
    device: str = "cuda"
    page_size: int = 1
    max_running_requests: int = 64
    context_length: int = 4096
    vocab_size: int = 32000
    disable_overlap_schedule: bool = False
    speculative_algorithm: str = "EAGLE"
