"""The arguments of the server."""

import dataclasses
from typing import Optional

from sglang.srt.utils import get_device


@dataclasses.dataclass
class ServerArgs:
    # (benchmark cut: most fields)
    model_path: str = ""
    mem_fraction_static: Optional[float] = None
    tp_size: int = 1
    ep_size: int = 1
    pp_size: int = 1
    device: Optional[str] = None
    page_size: int = 1
    attention_backend: Optional[str] = None
    enable_memory_saver: bool = False
    disaggregation_mode: str = "null"

    def __post_init__(self):
        # (benchmark cut: other defaults)
        if self.device is None:
            self.device = get_device()
