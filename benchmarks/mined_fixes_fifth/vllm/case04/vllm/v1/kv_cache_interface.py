# SPDX-License-Identifier: Apache-2.0
# Cut down: page-size and memory accounting are dropped.
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class KVCacheSpec:
    # number of tokens in a block
    block_size: int


@dataclass(frozen=True)
class AttentionSpec(KVCacheSpec):
    num_kv_heads: int
    head_size: int
    dtype: torch.dtype
    use_mla: bool = False
