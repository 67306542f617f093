"""A GPU worker class."""
import gc
import os
from typing import List, Optional

import torch

from vllm.worker.model_runner import GPUModelRunnerBase, ModelRunner

# (benchmark cut: distributed, cache-engine, profiler and sleep-mode imports)


class Worker:
    """A worker class that executes (a partition of) the model on a GPU.

    Each worker is associated with a single GPU. The worker is responsible for
    maintaining the KV cache and executing the model on the GPU. In case of
    distributed inference, each worker is assigned a partition of the model.
    """

    def __init__(
        self,
        vllm_config,
        local_rank: int,
        rank: int,
        distributed_init_method: str,
        is_driver_worker: bool = False,
    ) -> None:
        # (benchmark cut: WorkerBase.__init__; the config fields it sets)
        self.vllm_config = vllm_config
        self.model_config = vllm_config.model_config
        self.cache_config = vllm_config.cache_config
        self.device_config = vllm_config.device_config
        self.local_rank = local_rank
        self.rank = rank
        self.distributed_init_method = distributed_init_method
        self.is_driver_worker = is_driver_worker

        # (benchmark cut: speculative-decoding args, pooling and
        # encoder-decoder runners)
        ModelRunnerClass = ModelRunner
        self.model_runner: GPUModelRunnerBase = ModelRunnerClass(
            vllm_config=self.vllm_config,
            kv_cache_dtype=self.cache_config.cache_dtype,
            is_driver_worker=is_driver_worker,
        )

        # Initialize gpu_cache as pooling models don't initialize kv_caches
        self.gpu_cache: Optional[List[List[torch.Tensor]]] = None

    def init_device(self) -> None:
        if self.device_config.device.type == "cuda":
            # torch.distributed.all_reduce does not free the input tensor until
            # the synchronization point. This causes the memory usage to grow
            # as the number of all_reduce calls increases. This env var disables
            # this behavior.
            # Related issue:
            # https://discuss.pytorch.org/t/cuda-allocation-lifetime-for-inputs-to-distributed-all-reduce/191573
            os.environ["TORCH_NCCL_AVOID_RECORD_STREAMS"] = "1"

            # This env var set by Ray causes exceptions with graph building.
            os.environ.pop("NCCL_ASYNC_ERROR_HANDLING", None)
            self.device = torch.device(f"cuda:{self.local_rank}")
            torch.cuda.set_device(self.device)

            gc.collect()
            torch.cuda.empty_cache()
        else:
            raise RuntimeError(
                f"Not support device type: {self.device_config.device}")
        # (benchmark cut: distributed init and random seed)

    def load_model(self):
        self.model_runner.load_model()

    # (benchmark cut: memory profiling, cache init, prepare_worker_input;
    # LocalOrDistributedWorkerBase.execute_model calls
    # self.model_runner.execute_model(model_input, self.kv_cache[...]))
