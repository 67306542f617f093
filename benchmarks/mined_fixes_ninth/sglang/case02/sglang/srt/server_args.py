"""The arguments of the server."""

import dataclasses
import logging
import random
from typing import Optional

from sglang.srt.utils import get_device

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ServerArgs:
    # (benchmark cut: most fields)
    model_path: str = ""
    device: Optional[str] = None
    tp_size: int = 1
    pp_size: int = 1
    ep_size: int = 1
    mem_fraction_static: Optional[float] = None
    page_size: Optional[int] = None
    random_seed: Optional[int] = None
    attention_backend: Optional[str] = None
    decode_attention_backend: Optional[str] = None
    prefill_attention_backend: Optional[str] = None
    speculative_algorithm: Optional[str] = None
    speculative_num_steps: Optional[int] = None
    speculative_num_draft_tokens: Optional[int] = None
    enable_two_batch_overlap: bool = False
    enable_double_sparsity: bool = False
    triton_attention_num_kv_splits: int = 8

    def __post_init__(self):
        # (benchmark cut: other defaults and checks)
        if self.device is None:
            self.device = get_device()
        if self.random_seed is None:
            self.random_seed = random.randint(0, 1 << 30)
        if self.page_size is None:
            self.page_size = 1
        if self.attention_backend is None:
            # (benchmark cut: model/hardware dependent default selection;
            #  "triton" is the default e.g. for AMD, sm_75, or when chosen via
            #  --attention-backend triton)
            self.attention_backend = "triton"
