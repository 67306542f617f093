from __future__ import annotations

import dataclasses
from enum import Enum, auto
from typing import List, Optional, Tuple

import torch


class Modality(Enum):
    IMAGE = auto()
    VIDEO = auto()
    AUDIO = auto()

    @staticmethod
    def all():
        return [Modality.IMAGE, Modality.VIDEO, Modality.AUDIO]


@dataclasses.dataclass
class MultimodalDataItem:
    modality: Modality
    offsets: List[Tuple[int, int]] = dataclasses.field(default_factory=list)
    pad_value: int = 0
    feature: Optional[torch.Tensor] = None
    precomputed_embeddings: Optional[torch.Tensor] = None

    def is_modality(self, modality: Modality) -> bool:
        return self.modality == modality


@dataclasses.dataclass
class MultimodalInputs:
    mm_items: List[MultimodalDataItem]
