# SPDX-License-Identifier: Apache-2.0

from fastvideo.train.trainer import Trainer

__all__ = [
    "Trainer",
]
