# SPDX-License-Identifier: Apache-2.0
# Cut down to model loading and the multimodal encoder step.
import torch

from vllm.config import VllmConfig
from vllm.model_executor.model_loader import get_model
from vllm.multimodal.inputs import MultiModalKwargs


class GPUModelRunner:

    def __init__(
        self,
        vllm_config: VllmConfig,
        device: torch.device,
    ):
        self.vllm_config = vllm_config
        self.device = device
        # req_id -> (input_id -> encoder_output)
        self.encoder_cache: dict[str, dict[int, torch.Tensor]] = {}

    def load_model(self) -> None:
        self.model = get_model(vllm_config=self.vllm_config)

    def _execute_encoder(self, mm_inputs: list[MultiModalKwargs],
                         req_input_ids: list[tuple[str, int]]):
        batched_mm_inputs = MultiModalKwargs.batch(mm_inputs)
        batched_mm_inputs = MultiModalKwargs.as_kwargs(batched_mm_inputs,
                                                       device=self.device)

        # Run the encoder.
        # `curr_group_outputs` is either of the following:
        # 1. A tensor of shape (num_items, feature_size, hidden_size)
        # in case feature_size is fixed across all multimodal items.
        # 2. A list or tuple (length: num_items) of tensors, each of shape
        # (feature_size, hidden_size) in case the feature size is dynamic
        # depending on the input multimodal items.
        curr_group_outputs = self.model.get_multimodal_embeddings(
            **batched_mm_inputs)

        (req_id, input_id) = req_input_ids[0]
        if req_id not in self.encoder_cache:
            self.encoder_cache[req_id] = {}
        self.encoder_cache[req_id][input_id] = curr_group_outputs
