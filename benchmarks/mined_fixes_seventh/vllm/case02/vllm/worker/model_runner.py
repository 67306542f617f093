# (benchmark cut: license header, input builders, CUDA-graph runners, LoRA and
# prompt-adapter support, profiling)
import weakref
from typing import List, Optional, Union

import torch
import torch.nn as nn

from vllm.logger import init_logger
from vllm.model_executor.model_loader import get_model

logger = init_logger(__name__)


class GPUModelRunnerBase:
    """
    Helper class for shared methods between GPU model runners.
    """

    def __init__(
        self,
        vllm_config,
        kv_cache_dtype: Optional[str] = "auto",
        is_driver_worker: bool = False,
        return_hidden_states: bool = False,
    ):

        # (benchmark cut: ModelRunnerBase.__init__; the config fields it sets)
        self.vllm_config = vllm_config
        self.model_config = vllm_config.model_config
        self.device_config = vllm_config.device_config
        self.observability_config = None

        self.is_driver_worker = is_driver_worker
        self.return_hidden_states = return_hidden_states

        self.device = self.device_config.device
        # (benchmark cut: pin_memory, block sizes, CUDA-graph sizes, attention
        # backend and input builder)

    def load_model(self) -> None:
        logger.info("Starting to load model %s...", self.model_config.model)
        self.model = get_model(vllm_config=self.vllm_config)
        # (benchmark cut: memory profiling, LoRA and prompt-adapter managers,
        # torch.compile)

    def get_model(self) -> nn.Module:
        return self.model


class ModelRunner(GPUModelRunnerBase):

    # (benchmark cut: prepare_model_input; model_input.input_tokens and
    # input_positions come from ModelInputForGPUBuilder.build, which uploads
    # them with async_tensor_h2d(..., self.runner.device, ...))

    @torch.inference_mode()
    def execute_model(
        self,
        model_input,
        kv_caches: List[torch.Tensor],
        intermediate_tensors=None,
        num_steps: int = 1,
    ):
        if num_steps > 1:
            raise ValueError("num_steps > 1 is not supported in ModelRunner")

        # (benchmark cut: LoRA/prompt-adapter activation, attention state and
        # CUDA-graph runner selection)
        model_executable = self.model

        # (benchmark cut: KV-transfer receive, multimodal kwargs and forward
        # timing)
        hidden_or_intermediate_states = model_executable(
            input_ids=model_input.input_tokens,
            positions=model_input.input_positions,
            kv_caches=kv_caches,
            attn_metadata=model_input.attn_metadata,
            intermediate_tensors=intermediate_tensors)

        # (benchmark cut: KV-transfer send and the non-last pipeline stage)

        logits = self.model.compute_logits(hidden_or_intermediate_states,
                                           model_input.sampling_metadata)

        if not self.is_driver_worker:
            return []

        if model_input.async_callback is not None:
            model_input.async_callback()

        # Sample the next token.
        output = self.model.sample(
            logits=logits,
            sampling_metadata=model_input.sampling_metadata,
        )
        # (benchmark cut: forward timing and hidden-state return)
        return [output]
