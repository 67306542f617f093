from dataclasses import dataclass


@dataclass
class ServerArgs:
    model_path: str = ""
    device: str = "cuda"
    page_size: int = 1
    max_running_requests: int = 256
    context_length: int = 4096
    cuda_graph_max_bs: int = 64
    disable_cuda_graph_padding: bool = False
    speculative_num_draft_tokens: int = 4
