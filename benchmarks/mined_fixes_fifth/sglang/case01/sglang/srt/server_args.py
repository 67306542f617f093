from dataclasses import dataclass


@dataclass
class ServerArgs:
    model_path: str = ""
    device: str = "cuda"
    page_size: int = 1
    max_running_requests: int = 256
    context_length: int = 4096
    enable_hisparse: bool = True
    hisparse_device_buffer_size: int = 2048
    hisparse_top_k: int = 2048
    enable_overlap_schedule: bool = False
