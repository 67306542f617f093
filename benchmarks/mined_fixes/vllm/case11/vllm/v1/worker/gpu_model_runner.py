import torch

from vllm.model_executor.model_loader import get_model
from vllm.multimodal.utils import group_mm_kwargs_by_modality


class GPUModelRunner:

    def __init__(self, vllm_config, device: torch.device):
        self.vllm_config = vllm_config
        self.device = device
        self.pin_memory = True
        self.encoder_cache: dict[str, torch.Tensor] = {}

    def load_model(self) -> None:
        self.model = get_model(vllm_config=self.vllm_config)

    def _execute_mm_encoder(self, scheduler_output) -> None:
        mm_kwargs, mm_hashes_pos = self._batch_mm_kwargs_from_scheduler(
            scheduler_output)
        if not mm_kwargs:
            return

        model = self.model
        encoder_outputs = []
        for modality, num_items, mm_kwargs_group in group_mm_kwargs_by_modality(
                mm_kwargs,
                device=self.device,
                pin_memory=self.pin_memory,
                multimodal_cpu_fields=model.multimodal_cpu_fields,
        ):
            curr_group_outputs = model.get_multimodal_embeddings(
                **mm_kwargs_group)
            encoder_outputs.extend(curr_group_outputs)

        for (mm_hash, pos_info), output in zip(mm_hashes_pos, encoder_outputs):
            self.encoder_cache[mm_hash] = output
