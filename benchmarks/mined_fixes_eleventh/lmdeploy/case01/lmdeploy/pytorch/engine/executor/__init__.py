# Copyright (c) OpenMMLab. All rights reserved.
from typing import Any, Dict

from lmdeploy.pytorch.config import BackendConfig, CacheConfig, DistConfig, MiscConfig, ModelConfig
from lmdeploy.utils import get_logger

from .base import ExecutorBase

# (benchmark cut: get_distributed_executor_backend; world_size == 1 gives 'uni')


def build_executor(model_path: str,
                   cache_config: CacheConfig,
                   backend_config: BackendConfig,
                   dist_config: DistConfig,
                   misc_config: MiscConfig,
                   tokenizer: Any,
                   adapters: Dict[str, str] = None,
                   device_type: str = 'cuda',
                   distributed_executor_backend: str = None,
                   dtype: str = 'auto') -> ExecutorBase:
    """Build model agent executor."""
    logger = get_logger('lmdeploy')
    world_size = dist_config.world_size

    model_config = ModelConfig.from_pretrained(model_path,
                                               trust_remote_code=True,
                                               dtype=dtype,
                                               hf_overrides=misc_config.hf_overrides,
                                               dist_config=dist_config)

    if distributed_executor_backend is None:
        distributed_executor_backend = 'uni'  # (benchmark cut: get_distributed_executor_backend(...))

    if distributed_executor_backend is not None:
        logger.info(f'Build <{distributed_executor_backend}> executor.')
    if distributed_executor_backend == 'uni':
        assert world_size == 1, 'uni executor only support world_size==1.'
        from .uni_executor import UniExecutor
        return UniExecutor(
            model_path=model_path,
            model_config=model_config,
            cache_config=cache_config,
            backend_config=backend_config,
            misc_config=misc_config,
            tokenizer=tokenizer,
            adapters=adapters,
            device_type=device_type,
        )
    # (benchmark cut: mp and ray executors)
    else:
        raise RuntimeError(f'Unsupported distributed_executor_backend: {distributed_executor_backend}.')
