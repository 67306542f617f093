"""A GPU worker class."""
import gc
import os
from typing import List, Optional, Type

import torch

from vllm.worker.model_runner import GPUModelRunnerBase, ModelRunner

# (benchmark cut: distributed, cache-engine and embedding-runner imports)


class Worker:
    """A worker class that executes (a partition of) the model on a GPU.

    Each worker is associated with a single GPU. The worker is responsible for
    maintaining the KV cache and executing the model on the GPU. In case of
    distributed inference, each worker is assigned a partition of the model.
    """

    def __init__(
        self,
        model_config,
        parallel_config,
        scheduler_config,
        device_config,
        cache_config,
        load_config,
        local_rank: int,
        rank: int,
        distributed_init_method: str,
        lora_config=None,
        is_driver_worker: bool = False,
    ) -> None:
        self.model_config = model_config
        self.parallel_config = parallel_config
        self.scheduler_config = scheduler_config
        self.device_config = device_config
        self.cache_config = cache_config
        self.local_rank = local_rank
        self.rank = rank
        self.distributed_init_method = distributed_init_method
        self.lora_config = lora_config
        self.load_config = load_config
        self.is_driver_worker = is_driver_worker
        # (benchmark cut: speculative args, embedding/encoder-decoder runners)

        ModelRunnerClass: Type[GPUModelRunnerBase] = ModelRunner
        self.model_runner: GPUModelRunnerBase = ModelRunnerClass(
            model_config,
            parallel_config,
            scheduler_config,
            device_config,
            cache_config,
            load_config=load_config,
            lora_config=self.lora_config,
            kv_cache_dtype=self.cache_config.cache_dtype,
            is_driver_worker=is_driver_worker,
        )

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

    @torch.inference_mode()
    def prepare_worker_input(self, execute_model_req):
        # (benchmark cut: swap/copy block tensors; the model input is built
        # by the runner)
        return self.model_runner.prepare_model_input(
            execute_model_req.seq_group_metadata_list,
            execute_model_req.virtual_engine,
            execute_model_req.finished_requests_ids)
