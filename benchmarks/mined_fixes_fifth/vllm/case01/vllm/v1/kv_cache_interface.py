# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down: page-size and memory accounting are dropped.
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class KVCacheSpec:
    # number of tokens in a block
    block_size: int


@dataclass(frozen=True, kw_only=True)
class AttentionSpec(KVCacheSpec):
    num_kv_heads: int
    head_size: int
    dtype: torch.dtype
    page_size_padded: int | None = None
