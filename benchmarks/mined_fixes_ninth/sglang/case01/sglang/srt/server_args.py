"""The arguments of the server."""

import dataclasses
import logging
import random
from typing import Optional, Union

from sglang.srt.utils.common import get_device

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ServerArgs:
    # (benchmark cut: most fields)
    model_path: str = ""
    tp_size: int = 1
    pp_size: int = 1
    ep_size: int = 1
    mem_fraction_static: Optional[float] = None
    page_size: Optional[int] = None
    device: Optional[str] = None
    random_seed: Optional[int] = None
    attention_backend: Optional[str] = None
    speculative_algorithm: Optional[str] = None
    enable_two_batch_overlap: bool = False
    enable_pdmux: bool = False
    sm_group_num: int = 8
    enable_deterministic_inference: bool = False
    disable_cuda_graph: bool = False
    disable_piecewise_cuda_graph: bool = False

    # Scoring configuration
    # Delimiter token ID used to combine Query and Items into a single sequence for multi-item scoring.
    # Format: Query<delimiter>Item1<delimiter>Item2<delimiter>...
    # This enables efficient batch processing of multiple items against a single query.
    multi_item_scoring_delimiter: Optional[Union[int]] = None

    def __post_init__(self):
        # (benchmark cut: other defaults and checks)
        if self.device is None:
            self.device = get_device()
        # strip device index from user if any (e.g. "cuda:0" -> "cuda")
        self.device = self.device.split(":")[0]
        if self.random_seed is None:
            self.random_seed = random.randint(0, 1 << 30)
        if self.attention_backend is None:
            # (benchmark cut: model/hardware dependent default selection)
            self.attention_backend = "flashinfer"
        if self.page_size is None:
            self.page_size = 1
        self._handle_multi_item_scoring()

    def _handle_multi_item_scoring(self):
        """Disable CUDA graphs when multi-item scoring delimiter is set.

        The padded static input_ids buffer used by CUDA graph replay causes
        spurious delimiter matches in score_and_pool's MIS path.
        """
        if self.multi_item_scoring_delimiter is None:
            return
        if not self.disable_cuda_graph:
            logger.warning(
                "CUDA graph is disabled because --multi-item-scoring-delimiter is set."
            )
            self.disable_cuda_graph = True
        self.disable_piecewise_cuda_graph = True


_global_server_args: Optional[ServerArgs] = None


def get_global_server_args() -> ServerArgs:
    return _global_server_args
