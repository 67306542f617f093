from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sglang.srt.model_executor.forward_batch_info import ForwardBatch, ForwardMode

if TYPE_CHECKING:
    from sglang.srt.model_executor.model_runner import ModelRunner

# (benchmark cut: graph inputs other than the LoRA hook, capture and replay)


class CudaGraphRunner:
    """A CudaGraphRunner runs the forward pass of a model with cuda graph and torch.compile."""

    def __init__(self, model_runner: ModelRunner):
        # Parse args
        self.model_runner = model_runner
        self.capture_bs = model_runner.server_args.cuda_graph_bs
        self.max_bs = max(self.capture_bs)
        self.capture_forward_mode = ForwardMode.DECODE

        # (benchmark cut: attention backend CUDA-graph state)

        if self.model_runner.server_args.lora_paths is not None:
            self.model_runner.lora_manager.init_cuda_graph_batch_info(self.max_bs)

        # (benchmark cut: graph input buffers and capture)
