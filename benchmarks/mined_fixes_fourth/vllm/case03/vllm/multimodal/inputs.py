# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to the placeholder range of one multi-modal item.
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PlaceholderRange:
    """
    Placeholder location information for multi-modal data.
    """

    offset: int
    """The start index of the placeholder in the prompt."""

    length: int
    """The length of the placeholder."""

    is_embed: "torch.Tensor | None" = None
    """
    A boolean mask of shape `(length,)` indicating which positions
    between `offset` and `offset + length` to assign embeddings to.
    """

    def extract_embeds_range(self) -> list[tuple[int, int]]:
        """Extract the start and end indices of the embedded region in prompt.

        Returns:
            A tuple `(start, end)` representing the start and end
            indices (inclusive) of the embedded region.
            Returns full placeholder range if `is_embed` is `None`.
        """
        # (benchmark cut: the is_embed path, which works on a CPU mask)
        return [(self.offset, self.offset + self.length - 1)]


@dataclass
class MultiModalFeatureSpec:
    modality: str
    identifier: str
    mm_position: PlaceholderRange
