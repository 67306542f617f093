"""The arguments of the server (benchmark stand-in: only the fields used by this case)."""

import dataclasses
from typing import Optional

from sglang.srt.utils.common import get_device


@dataclasses.dataclass
class ServerArgs:
    model_path: str = ""
    load_format: str = "auto"
    download_dir: Optional[str] = None
    model_loader_extra_config: str = "{}"
    device: Optional[str] = None
    mm_enable_dp_encoder: bool = False
    # (benchmark cut: all other fields)

    def __post_init__(self):
        # Set missing default values (real code: _handle_missing_default_values)
        if self.device is None:
            self.device = get_device()
        # (benchmark cut: the rest of __post_init__)


_global_server_args: Optional[ServerArgs] = None


def get_global_server_args() -> ServerArgs:
    if _global_server_args is None:
        raise ValueError("Global server args is not set yet!")
    return _global_server_args
