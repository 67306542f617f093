# Copyright (c) Meta Platforms, Inc. and affiliates.
# All rights reserved.
#
# This source code is licensed under the BSD-style license found in the
# LICENSE file in the root directory of this source tree.

# (benchmark cut: checkpointing, argparse, checkpoint, checkpointable_dataloader, collate, constants, distributed, logging, memory, precision, seed re-exports)
from .device import get_device

__all__ = [
    "get_device",
]
