"""The arguments of the server."""

import dataclasses
from typing import Optional

from sglang.srt.utils.common import get_device


@dataclasses.dataclass
class ServerArgs:
    # (benchmark cut: most fields)
    model_path: str = ""
    device: Optional[str] = None
    page_size: Optional[int] = None
    enable_memory_saver: bool = False
    disable_overlap_schedule: bool = False
    disaggregation_mode: str = "null"
    speculative_num_draft_tokens: Optional[int] = None
    max_mamba_cache_size: Optional[int] = None
    mamba_scheduler_strategy: str = "auto"
    mamba_track_interval: int = 256

    def __post_init__(self):
        # (benchmark cut: other defaults and checks; "auto" resolves to
        #  "extra_buffer" when the model and the radix cache support it)
        if self.device is None:
            self.device = get_device()
        if self.page_size is None:
            self.page_size = 1

    def enable_mamba_extra_buffer(self) -> bool:
        return self.mamba_scheduler_strategy == "extra_buffer"


_global_server_args: Optional[ServerArgs] = None


def set_global_server_args_for_scheduler(server_args: ServerArgs):
    global _global_server_args
    _global_server_args = server_args


def get_global_server_args() -> ServerArgs:
    if _global_server_args is None:
        raise ValueError("Global server args is not set yet!")

    return _global_server_args
