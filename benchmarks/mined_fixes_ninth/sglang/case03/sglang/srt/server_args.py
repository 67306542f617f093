"""The arguments of the server."""

import dataclasses
from typing import Optional


@dataclasses.dataclass
class ServerArgs:
    # (benchmark cut: most fields)
    model_path: str = ""
    mem_fraction_static: Optional[float] = None
    max_num_reqs: Optional[int] = None
    max_total_tokens: Optional[int] = None
    chunked_prefill_size: int = 8192
    disable_flashinfer: bool = False
    disable_cuda_graph: bool = False
    enable_torch_compile: bool = False
