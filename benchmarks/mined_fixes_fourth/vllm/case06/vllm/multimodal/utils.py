# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down: the real function groups items by modality and batches them with
# each field's config; here every item already is one modality's batch.
from collections.abc import Generator

import torch


def group_mm_kwargs_by_modality(
    mm_kwargs: list[tuple[str, dict[str, torch.Tensor]]],
    *,
    device: torch.types.Device = None,
    pin_memory: bool = False,
) -> Generator[tuple[str, int, dict[str, torch.Tensor]], None, None]:
    for modality, item in mm_kwargs:
        mm_kwargs_group = {
            k: v.to(device=device, non_blocking=True) for k, v in item.items()
        }
        yield modality, 1, mm_kwargs_group
