# Copyright (c) Meta Platforms, Inc. and affiliates.
# All rights reserved.
#
# This source code is licensed under the BSD-style license found in the
# LICENSE file in the root directory of this source tree.

from ._generation import (
    generate,
    generate_next_token,
    get_causal_mask_from_padding_mask,
    get_position_ids_from_padding_mask,
    sample,
)

__all__ = [
    "generate",
    "generate_next_token",
    "get_causal_mask_from_padding_mask",
    "get_position_ids_from_padding_mask",
    "sample",
]
