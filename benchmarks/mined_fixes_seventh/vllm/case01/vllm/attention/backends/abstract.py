# SPDX-License-Identifier: Apache-2.0
# (benchmark cut: abstract attention interfaces reduced to empty bases)
from abc import ABC
from typing import Generic, TypeVar


class AttentionBackend(ABC):
    """Abstract class for attention backends."""


class AttentionMetadata:
    pass


T = TypeVar("T", bound=AttentionMetadata)


class AttentionLayer:
    pass


class MLAAttentionImpl(Generic[T]):
    pass
