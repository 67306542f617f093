"""ModelRunner runs the forward passes of the models."""

import logging
from typing import Optional

from sglang.srt.mem_cache.memory_pool import ReqToTokenPool
from sglang.srt.model_executor.model_runner_kv_cache_mixin import (
    ModelRunnerKVCacheMixin,
)
from sglang.srt.server_args import ServerArgs

logger = logging.getLogger(__name__)


class ModelRunner(ModelRunnerKVCacheMixin):
    """ModelRunner runs the forward passes of the models."""

    def __init__(
        self,
        model_config,
        mem_fraction_static: float,
        gpu_id: int,
        tp_rank: int,
        tp_size: int,
        moe_ep_rank: int,
        moe_ep_size: int,
        pp_rank: int,
        pp_size: int,
        nccl_port: int,
        server_args: ServerArgs,
        dp_rank: Optional[int] = None,
        is_draft_worker: bool = False,
        req_to_token_pool: Optional[ReqToTokenPool] = None,
        token_to_kv_pool_allocator=None,
    ):
        # Parse args
        self.mem_fraction_static = mem_fraction_static
        self.device = server_args.device
        self.gpu_id = gpu_id

        # (benchmark cut: parallel ranks, model flags, model loading, attention
        #  backends, cuda graphs)
        self.model_config = model_config
        self.server_args = server_args
        self.is_draft_worker = is_draft_worker
        self.page_size = server_args.page_size
        self.req_to_token_pool = req_to_token_pool
        self.token_to_kv_pool_allocator = token_to_kv_pool_allocator

    @property
    def hybrid_gdn_config(self):
        config = self.model_config.hf_config.get_text_config()
        # (benchmark cut: isinstance check against the Qwen3-Next / Qwen3.5 /
        #  JetNemotron config classes)
        if getattr(config, "linear_attn_layers", None) is not None:
            return config
        return None

    @property
    def mamba2_config(self):
        config = self.model_config.hf_config
        # (benchmark cut: NemotronH MTP draft special case and the
        #  isinstance check against the Mamba2 / NemotronH / FalconH1 config classes)
        if getattr(config, "mamba2_cache_params", None) is not None:
            return config
        return None

    @property
    def mambaish_config(self):
        return (
            self.mamba2_config
            or self.hybrid_gdn_config
            # (benchmark cut: kimi_linear_config, hybrid_lightning_config)
        )
