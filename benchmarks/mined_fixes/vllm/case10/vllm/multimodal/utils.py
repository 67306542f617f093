from collections.abc import Generator
from itertools import groupby

import torch

from vllm.multimodal.inputs import BatchedTensorInputs, MultiModalKwargs


def group_mm_kwargs_by_modality(
    mm_kwargs: list,
    *,
    device: torch.types.Device = None,
    pin_memory: bool = False,
) -> Generator[tuple[str, int, BatchedTensorInputs], None, None]:
    """Group consecutive `MultiModalKwargsItem`s from `mm_kwargs` with the same
    modality together into the same `MultiModalKwargs` instance."""
    for modality, items in groupby(mm_kwargs, key=lambda item: item.modality):
        items_lst = list(items)
        mm_kwargs_group = MultiModalKwargs.as_kwargs(
            MultiModalKwargs.batch(
                [MultiModalKwargs.from_items([item]) for item in items_lst],
                pin_memory=pin_memory,
            ),
            device=device,
        )
        yield modality, len(items_lst), mm_kwargs_group
