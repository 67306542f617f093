"""ModelRunner runs the forward passes of the models."""

import logging
from typing import Optional

import torch

logger = logging.getLogger(__name__)


class ModelRunner:
    """ModelRunner runs the forward passes of the models."""

    def __init__(
        self,
        model_config,
        mem_fraction_static: float,
        gpu_id: int,
        ps,
        nccl_port: int,
        server_args,
        is_draft_worker: bool = False,
        req_to_token_pool=None,
        token_to_kv_pool_allocator=None,
        memory_pool_config=None,
        draft_model_idx: Optional[int] = None,
    ):
        # Parse args
        self.mem_fraction_static = mem_fraction_static
        self.memory_pool_config = memory_pool_config
        self.device = server_args.device
        self.gpu_id = gpu_id
        # (benchmark cut: the rest of the initialisation: model loading, memory pools,
        #  attention backends, cuda graphs)
        self.model_config = model_config
        self.server_args = server_args
        self.is_draft_worker = is_draft_worker

    # (benchmark cut: forward and the other methods)
