"""The arguments of the server."""

import dataclasses
import logging
from typing import Optional

from sglang.srt.utils import is_flashinfer_available

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ServerArgs:
    # Model and tokenizer
    model_path: str
    tokenizer_path: Optional[str] = None
    tokenizer_mode: str = "auto"
    skip_tokenizer_init: bool = False
    load_format: str = "auto"
    trust_remote_code: bool = True
    dtype: str = "auto"
    kv_cache_dtype: str = "auto"
    quantization: Optional[str] = None
    context_length: Optional[int] = None
    device: str = "cuda"
    served_model_name: Optional[str] = None
    chat_template: Optional[str] = None
    is_embedding: bool = False

    # Memory and scheduling
    mem_fraction_static: Optional[float] = None
    max_running_requests: Optional[int] = None
    max_total_tokens: Optional[int] = None
    # (benchmark cut: port, scheduling, logging, data-parallel arguments)

    # Other runtime options
    tp_size: int = 1

    # Optimization/debug options
    # (benchmark cut: other optimization/debug options)
    disable_mla: bool = False
    disable_overlap_schedule: bool = False
    enable_dp_attention: bool = False
    torchao_config: str = ""
    enable_nan_detection: bool = False
    triton_attention_reduce_in_fp32: bool = False

    # Model override args in JSON
    json_model_override_args: str = "{}"

    # Kernel backend
    attention_backend: Optional[str] = None
    sampling_backend: Optional[str] = None
    # (benchmark cut: remaining arguments)

    def __post_init__(self):
        # (benchmark cut: tokenizer path, mem_fraction_static, chunked prefill defaults)
        if not is_flashinfer_available():
            self.attention_backend = "triton"
            self.sampling_backend = "pytorch"

        # Default kernel backends
        if self.attention_backend is None:
            self.attention_backend = "flashinfer"

        if self.sampling_backend is None:
            self.sampling_backend = "flashinfer"
