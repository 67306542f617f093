"""The arguments of the server."""

import dataclasses
from typing import Optional

from sglang.srt.utils.common import get_device


@dataclasses.dataclass
class ServerArgs:
    # (benchmark cut: most fields)
    model_path: str = ""
    tp_size: int = 1
    device: Optional[str] = None
    page_size: Optional[int] = None
    enable_memory_saver: bool = False
    disable_overlap_schedule: bool = False
    speculative_algorithm: Optional[str] = None
    speculative_num_steps: Optional[int] = None
    speculative_eagle_topk: Optional[int] = None
    speculative_num_draft_tokens: Optional[int] = None
    enable_nan_detection: bool = False

    def __post_init__(self):
        # (benchmark cut: other defaults and checks)
        if self.device is None:
            self.device = get_device()
        if self.page_size is None:
            self.page_size = 1


_global_server_args: Optional[ServerArgs] = None


def get_global_server_args() -> ServerArgs:
    return _global_server_args
