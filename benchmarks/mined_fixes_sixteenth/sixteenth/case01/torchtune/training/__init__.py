# Copyright (c) Meta Platforms, Inc. and affiliates.
# All rights reserved.
#
# This source code is licensed under the BSD-style license found in the
# LICENSE file in the root directory of this source tree.
# (benchmark cut: all other torchtune.training re-exports: activation offloading, compile, distributed, checkpointing, lr schedulers, memory, precision, quantization, seed, ...)
from torchtune.training.pooling import get_unmasked_sequence_lengths
