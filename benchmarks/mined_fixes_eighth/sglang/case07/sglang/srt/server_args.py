"""The arguments of the server."""

import dataclasses
import logging
import random
from typing import Optional

from sglang.srt.utils.common import get_device

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ServerArgs:
    # Model and tokenizer
    model_path: str
    tokenizer_path: Optional[str] = None
    # (benchmark cut: other model / tokenizer / port / memory arguments)

    # Runtime options
    device: Optional[str] = None
    random_seed: Optional[int] = None
    served_model_name: Optional[str] = None
    page_size: Optional[int] = None
    # (benchmark cut: other runtime options)

    # Speculative decoding
    speculative_algorithm: Optional[str] = None
    # (benchmark cut: other speculative arguments)

    # Optimization/debug options
    disable_overlap_schedule: bool = False
    # (benchmark cut: remaining arguments)

    def __post_init__(self):
        """
        Orchestrates the handling of various server arguments, ensuring proper configuration and validation.
        """
        # (benchmark cut: deprecated-argument handling)

        # Set missing default values.
        self._handle_missing_default_values()

        # (benchmark cut: memory settings, backend and speculative-decoding adjustments)

    def _handle_missing_default_values(self):
        if self.tokenizer_path is None:
            self.tokenizer_path = self.model_path
        if self.served_model_name is None:
            self.served_model_name = self.model_path
        if self.device is None:
            self.device = get_device()
        # strip device index from user if any (e.g. "cuda:0" -> "cuda")
        self.device = self.device.split(":")[0]
        if self.random_seed is None:
            self.random_seed = random.randint(0, 1 << 30)
