# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
from collections.abc import Mapping
from itertools import groupby
from typing import TypeAlias

import torch
import torch.nn as nn

from vllm.tasks import PoolingTask
from vllm.v1.pool.metadata import PoolingMetadata

PoolerOutput: TypeAlias = list[torch.Tensor | None]


class DispatchPooler(nn.Module):
    """Dispatches calls to a sub-pooler based on the pooling task."""

    def __init__(self, poolers_by_task: Mapping[PoolingTask, nn.Module]) -> None:
        super().__init__()

        self.poolers_by_task = poolers_by_task

    def forward(
        self,
        hidden_states: torch.Tensor,
        pooling_metadata: PoolingMetadata,
    ) -> PoolerOutput:
        poolers_by_task = self.poolers_by_task

        outputs = list[torch.Tensor | None]()
        offset = 0
        for task, group in groupby(pooling_metadata.tasks):
            if not (pooler := poolers_by_task.get(task)):
                raise ValueError(f"Unsupported task: {task!r}")

            num_items = len(list(group))
            group_output: PoolerOutput = pooler(
                hidden_states,
                pooling_metadata[offset : offset + num_items],
            )

            outputs.extend(group_output)
            offset += num_items

        return outputs
