from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

import torch

NestedTensors = Union[list["NestedTensors"], list[torch.Tensor], torch.Tensor,
                      tuple[torch.Tensor, ...]]
BatchedTensorInputs = dict[str, NestedTensors]


class BaseMultiModalField(ABC):

    @abstractmethod
    def _reduce_data(self, batch: list[NestedTensors], *,
                     pin_memory: bool) -> NestedTensors:
        raise NotImplementedError

    def reduce_data(self, elems: list["MultiModalFieldElem"], *,
                    pin_memory: bool = False) -> NestedTensors:
        batch = [elem.data for elem in elems]
        return self._reduce_data(batch, pin_memory=pin_memory)


@dataclass(frozen=True)
class MultiModalBatchedField(BaseMultiModalField):

    def _reduce_data(self, batch: list[NestedTensors], *,
                     pin_memory: bool) -> NestedTensors:
        if len(batch) > 0 and all(isinstance(t, torch.Tensor) for t in batch):
            batch = [t for t in batch]
            first_shape = batch[0].shape
            if all(elem.shape == first_shape for elem in batch):
                out = torch.empty((len(batch), *first_shape),
                                  dtype=batch[0].dtype,
                                  device=batch[0].device,
                                  pin_memory=pin_memory)
                return torch.stack(batch, out=out)
        return batch


@dataclass
class MultiModalFieldElem:
    modality: str
    key: str
    data: NestedTensors
    field: BaseMultiModalField


class MultiModalKwargsItem(dict[str, MultiModalFieldElem]):

    @property
    def modality(self) -> str:
        modalities = {elem.modality for elem in self.values()}
        assert len(modalities) == 1, f"Found different modalities={modalities}"
        return next(iter(modalities))

    def get_data(self) -> Mapping[str, NestedTensors]:
        return {key: elem.data for key, elem in self.items()}


class MultiModalKwargsItems(dict[str, Sequence[MultiModalKwargsItem]]):

    @staticmethod
    def from_seq(items: Sequence[MultiModalKwargsItem]):
        items_by_modality = defaultdict[str, list[MultiModalKwargsItem]](list)
        for item in items:
            items_by_modality[item.modality].append(item)
        return MultiModalKwargsItems(items_by_modality)

    def get_data(self, *, pin_memory: bool = False) -> BatchedTensorInputs:
        elems_by_key = defaultdict[str, list[MultiModalFieldElem]](list)
        for modality, items in self.items():
            for i, item in enumerate(items):
                for key, elem in item.items():
                    elems_by_key[key].append(elem)

        return {
            key: elems[0].field.reduce_data(elems, pin_memory=pin_memory)
            for key, elems in elems_by_key.items()
        }
