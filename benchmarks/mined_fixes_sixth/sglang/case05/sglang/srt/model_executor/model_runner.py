import logging

import torch

from sglang.srt.lora.lora_manager import LoRAManager
from sglang.srt.model_executor.forward_batch_info import ForwardBatch

logger = logging.getLogger(__name__)

# (benchmark cut: distributed init, memory pools, attention backends and sampling)


class ModelRunner:
    """ModelRunner runs the forward passes of the models."""

    def __init__(
        self,
        model_config,
        gpu_id: int,
        tp_rank: int,
        tp_size: int,
        server_args,
    ):
        # Parse args
        self.model_config = model_config
        self.device = server_args.device
        self.gpu_id = gpu_id
        self.tp_rank = tp_rank
        self.tp_size = tp_size
        self.server_args = server_args
        self.dtype = model_config.dtype
        self.load_config = None
        # (benchmark cut: the rest of __init__)
        self.initialize()

    def initialize(self):
        # (benchmark cut: load_model places the weights on self.device; stand-in module)
        torch.get_device_module(self.device).set_device(self.gpu_id)
        self.model = torch.nn.Linear(8, 8, device=self.device)
        if self.server_args.lora_paths is not None:
            self.init_lora_manager()
        # (benchmark cut: CUDA-graph runner)

    def init_lora_manager(self):
        self.lora_manager = LoRAManager(
            base_model=self.model,
            lora_paths=self.server_args.lora_paths,
            base_hf_config=self.model_config.hf_config,
            max_loras_per_batch=self.server_args.max_loras_per_batch,
            load_config=self.load_config,
            dtype=self.dtype,
            lora_backend=self.server_args.lora_backend,
            tp_size=self.tp_size,
            tp_rank=self.tp_rank,
        )
        logger.info("LoRA manager ready.")

    def forward(self, forward_batch: ForwardBatch):
        # (benchmark cut: CUDA-graph replay and the model call)
        return self.model(forward_batch.input_ids)


class TpModelWorker:
    # (benchmark cut: stand-in for managers/tp_worker.py)
    def __init__(self, model_runner: ModelRunner):
        self.model_runner = model_runner

    def forward_batch_generation(self, model_worker_batch):
        forward_batch = ForwardBatch.init_new(model_worker_batch, self.model_runner)
        return self.model_runner.forward(forward_batch)
