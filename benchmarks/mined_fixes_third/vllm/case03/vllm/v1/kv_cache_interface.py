# SPDX-License-Identifier: Apache-2.0
from dataclasses import dataclass


@dataclass(frozen=True)
class AttentionSpec:
    block_size: int
    num_kv_heads: int = 8
    head_size: int = 128
