# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
from abc import ABC, abstractmethod
from collections.abc import Set

import torch
import torch.nn as nn

from vllm.v1.pool.metadata import PoolingMetadata

PoolerOutput = list[torch.Tensor | None] | torch.Tensor


class Pooler(nn.Module, ABC):
    """The interface required for all poolers used in pooling models in vLLM."""

    @abstractmethod
    def get_supported_tasks(self) -> Set[str]:
        """Determine which pooling tasks are supported."""
        raise NotImplementedError

    @abstractmethod
    def forward(
        self,
        hidden_states: torch.Tensor,
        pooling_metadata: PoolingMetadata,
    ) -> PoolerOutput:
        raise NotImplementedError
