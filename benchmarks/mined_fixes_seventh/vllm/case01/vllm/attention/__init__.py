# SPDX-License-Identifier: Apache-2.0

from vllm.attention.backends.abstract import (AttentionBackend,
                                              AttentionMetadata)
from vllm.attention.selector import get_attn_backend

__all__ = ["AttentionBackend", "AttentionMetadata", "get_attn_backend"]
