from collections.abc import Generator, Set
from itertools import groupby

import torch

from vllm.multimodal.inputs import (BatchedTensorInputs, MultiModalKwargsItem,
                                    MultiModalKwargsItems)
from vllm.utils.jsontree import json_map_leaves


def group_mm_kwargs_by_modality(
    mm_kwargs: list[MultiModalKwargsItem],
    *,
    device: torch.types.Device = None,
    pin_memory: bool = False,
    multimodal_cpu_fields: Set[str] = frozenset(),
) -> Generator[tuple[str, int, BatchedTensorInputs], None, None]:
    """Group consecutive `MultiModalKwargsItem`s from `mm_kwargs` with the same
    modality together into the same `MultiModalKwargs` instance.

    Args:
        mm_kwargs: List of `MultiModalKwargsItem`.
        device: The device to place the grouped tensors on.
        pin_memory: Whether to pin memory for faster host-to-device transfer.

    Yields:
        A tuple `(modality, num_items, grouped_kwargs)`.
    """
    for modality, items in groupby(mm_kwargs, key=lambda item: item.modality):
        items_lst = list(items)

        mm_kwargs_group: BatchedTensorInputs = dict(
            MultiModalKwargsItems.from_seq(items_lst).get_data(
                pin_memory=pin_memory))

        if device is not None:
            mm_kwargs_group = {
                k: json_map_leaves(
                    lambda x: x.to(device=device),  # SYNC (pre-fix, #28141)
                    v,
                ) if k not in multimodal_cpu_fields else v
                for k, v in mm_kwargs_group.items()
            }

        yield modality, len(items_lst), mm_kwargs_group
