from dataclasses import dataclass


@dataclass
class ServerArgs:
    model_path: str = ""
    device: str = "cuda"
    page_size: int = 16
    max_running_requests: int = 256
    context_length: int = 4096
    speculative_algorithm: str = None
    disaggregation_mode: str = "null"
