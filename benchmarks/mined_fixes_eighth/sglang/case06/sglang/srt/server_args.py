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
    tp_size: int = 1
    random_seed: Optional[int] = None
    served_model_name: Optional[str] = None
    # (benchmark cut: other runtime options)

    # Kernel backend
    attention_backend: Optional[str] = None
    decode_attention_backend: Optional[str] = None
    prefill_attention_backend: Optional[str] = None
    # (benchmark cut: remaining arguments)

    def __post_init__(self):
        """
        Orchestrates the handling of various server arguments, ensuring proper configuration and validation.
        """
        # (benchmark cut: deprecated-argument handling)

        # Set missing default values.
        self._handle_missing_default_values()

        # (benchmark cut: gpu memory settings, device/model-specific attention backend choice, ...)

    def _handle_missing_default_values(self):
        if self.tokenizer_path is None:
            self.tokenizer_path = self.model_path
        if self.served_model_name is None:
            self.served_model_name = self.model_path
        if self.device is None:
            self.device = get_device()
        if self.random_seed is None:
            self.random_seed = random.randint(0, 1 << 30)

    def get_attention_backends(server_args):
        prefill_attention_backend_str = (
            server_args.prefill_attention_backend
            if server_args.prefill_attention_backend
            else server_args.attention_backend
        )
        decode_attention_backend_str = (
            server_args.decode_attention_backend
            if server_args.decode_attention_backend
            else server_args.attention_backend
        )
        return prefill_attention_backend_str, decode_attention_backend_str
