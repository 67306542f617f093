# Copyright (c) Meta Platforms, Inc. and affiliates.
# All rights reserved.
#
# This source code is licensed under the BSD-style license found in the
# LICENSE file in the root directory of this source tree.

__version__ = ""

# (benchmark cut: torchao / hf_transfer import checks and `from torchtune import datasets, generation, models, modules, utils`)
