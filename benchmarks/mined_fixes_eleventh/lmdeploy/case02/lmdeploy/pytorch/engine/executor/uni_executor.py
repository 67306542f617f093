# Copyright (c) OpenMMLab. All rights reserved.
import asyncio

from lmdeploy.pytorch.config import BackendConfig, CacheConfig, DistConfig, MiscConfig, ModelConfig, SpecDecodeConfig
from lmdeploy.pytorch.devices import DeviceContext
from lmdeploy.pytorch.engine.model_agent import build_model_agent
from lmdeploy.utils import get_logger

from .base import ExecutorBase

logger = get_logger('lmdeploy')


class UniExecutor(ExecutorBase):
    """Single node single device Executor."""

    def __init__(
        self,
        model_path: str,
        model_config: ModelConfig,
        cache_config: CacheConfig,
        backend_config: BackendConfig,
        misc_config: MiscConfig,
        adapters: dict[str, str] = None,
        device_type: str = 'cuda',
        specdecode_config: SpecDecodeConfig = None,
        trust_remote_code: bool = False
    ):
        """Initialize Executor."""
        super().__init__(model_path=model_path,
                         model_config=model_config,
                         cache_config=cache_config,
                         backend_config=backend_config,
                         dist_config=DistConfig(),
                         misc_config=misc_config,
                         adapters=adapters,
                         device_type=device_type,
                         specdecode_config=specdecode_config,
                         trust_remote_code=trust_remote_code)

        self.device_ctx = DeviceContext(device_type=device_type)
        self.model_agent = build_model_agent(
            model_path=model_path,
            model_config=model_config,
            cache_config=cache_config,
            backend_config=backend_config,
            misc_config=misc_config,
            device_ctx=self.device_ctx,
            adapters=adapters,
            specdecode_config=specdecode_config,
            trust_remote_code=trust_remote_code,
        )

    # (benchmark cut: download_models, build_model, build_graph_runner, build_cache_engine, warmup, migration, ...)

    def start(self, forward_event: asyncio.Event):
        """Start engine loop."""
        self.model_agent.start(forward_event)

    async def forward_async(self, inputs):
        """Start forward."""
        self.model_agent.set_forward_inputs(inputs)
        # switch to task: ModelAgent._async_loop_inputs_preprocess
        await asyncio.sleep(0)

    async def get_output_async(self, dp_rank: int = 0):
        """Get output async."""
        assert dp_rank == 0
        return await self.model_agent.get_output_async()
