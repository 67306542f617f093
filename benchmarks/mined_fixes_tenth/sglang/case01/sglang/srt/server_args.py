"""The arguments of the server."""

import dataclasses
import logging
from typing import Optional

from sglang.srt.utils import get_device

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ServerArgs:
    # (benchmark cut: most fields)
    model_path: str = ""
    tokenizer_path: Optional[str] = None
    device: Optional[str] = None
    attention_backend: Optional[str] = None
    disable_mla: bool = False
    enable_flashinfer_mla: bool = False
    enable_flashmla: bool = False
    disable_cuda_graph: bool = False
    enable_memory_saver: bool = False

    def __post_init__(self):
        # Set missing default values
        if self.tokenizer_path is None:
            self.tokenizer_path = self.model_path

        if self.device is None:
            self.device = get_device()

        # (benchmark cut: other defaults and checks)
