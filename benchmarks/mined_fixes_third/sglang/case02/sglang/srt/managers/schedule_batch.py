from __future__ import annotations

import dataclasses
from enum import Enum, auto
from typing import List, Optional, Tuple

import torch


class Modality(Enum):
    IMAGE = auto()
    MULTI_IMAGES = auto()
    VIDEO = auto()
    AUDIO = auto()

    @staticmethod
    def all():
        return [Modality.IMAGE, Modality.VIDEO, Modality.AUDIO]


@dataclasses.dataclass
class MultimodalDataItem:
    modality: Modality
    hash: int = None
    pad_value: int = None
    offsets: Optional[list] = None
    feature: Optional[torch.Tensor] = None
    precomputed_embeddings: Optional[torch.Tensor] = None

    def is_modality(self, modality: Modality) -> bool:
        return self.modality == modality


@dataclasses.dataclass
class MultimodalInputs:
    mm_items: List[MultimodalDataItem]


@dataclasses.dataclass
class ModelWorkerBatch:
    forward_mode: object
    input_ids: torch.Tensor
    seq_lens: torch.Tensor
    multimodal_inputs: Optional[List[MultimodalInputs]]
    extend_prefix_lens: Optional[List[int]]
    extend_seq_lens: Optional[List[int]]


@dataclasses.dataclass
class ScheduleBatch:
    """Store all information of a batch on the scheduler."""

    reqs: list
    forward_mode: object = None
    device: str = "cuda"

    input_ids: Optional[torch.Tensor] = None
    # Pinned CPU staging for prefill input_ids; H2D is deferred to the
    # forward stream (overlap_utils.resolve_forward_inputs).
    prefill_input_ids_cpu: Optional[torch.Tensor] = None
    mix_running_indices: Optional[torch.Tensor] = None
    seq_lens: Optional[torch.Tensor] = None
    multimodal_inputs: Optional[List[MultimodalInputs]] = None
    prefix_lens: Optional[List[int]] = None
    extend_lens: Optional[List[int]] = None

    def get_model_worker_batch(self) -> ModelWorkerBatch:
        return ModelWorkerBatch(
            forward_mode=self.forward_mode,
            input_ids=self.input_ids,
            seq_lens=self.seq_lens,
            multimodal_inputs=self.multimodal_inputs,
            extend_prefix_lens=self.prefix_lens,
            extend_seq_lens=self.extend_lens,
        )
