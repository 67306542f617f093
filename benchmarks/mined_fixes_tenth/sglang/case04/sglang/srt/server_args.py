"""The arguments of the server."""

import dataclasses
import logging
from typing import List, Optional

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ServerArgs:
    # Model and tokenizer
    model_path: str
    tokenizer_path: Optional[str] = None
    # (benchmark cut: most fields)
    device: str = "cuda"
    attention_backend: Optional[str] = None
    lora_paths: Optional[List[str]] = None

    def __post_init__(self):
        # Set missing default values
        if self.tokenizer_path is None:
            self.tokenizer_path = self.model_path
        # (benchmark cut: other defaults and checks)
