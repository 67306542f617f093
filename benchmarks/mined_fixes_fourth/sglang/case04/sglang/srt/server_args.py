from dataclasses import dataclass


@dataclass
class ServerArgs:
    device: str = "cuda"
    page_size: int = 256
    max_running_requests: int = 64
    context_length: int = 65536
    speculative_algorithm: str = "EAGLE"
    speculative_eagle_topk: int = 1
    speculative_num_steps: int = 3
    speculative_num_draft_tokens: int = 4
