from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Union

import torch

NestedTensors = Union[list["NestedTensors"], list[torch.Tensor], torch.Tensor,
                      tuple[torch.Tensor, ...]]
BatchedTensorInputs = Mapping[str, NestedTensors]


@dataclass(frozen=True)
class MultiModalFieldConfig:

    @staticmethod
    def batched(modality: str):
        return MultiModalFieldConfig(field=("batched", ), modality=modality)

    @staticmethod
    def flat_from_sizes(modality: str, size_per_item: torch.Tensor, dim: int = 0):
        return MultiModalFieldConfig(field=("flat", size_per_item, dim),
                                     modality=modality)

    field: tuple
    modality: str


class MultiModalKwargs(dict):

    @staticmethod
    def batch(inputs_list: list["MultiModalKwargs"], pin_memory: bool = False
              ) -> BatchedTensorInputs:
        item_lists = {}
        for inputs in inputs_list:
            for k, v in inputs.items():
                item_lists.setdefault(k, []).append(v)
        return {
            k: torch.stack(v).pin_memory() if pin_memory else torch.stack(v)
            for k, v in item_lists.items()
        }

    @staticmethod
    def as_kwargs(batched_inputs: BatchedTensorInputs, *,
                  device: torch.types.Device) -> BatchedTensorInputs:
        from vllm.utils import json_map_leaves
        return json_map_leaves(
            lambda x: x.to(device=device, non_blocking=True),
            batched_inputs,
        )
