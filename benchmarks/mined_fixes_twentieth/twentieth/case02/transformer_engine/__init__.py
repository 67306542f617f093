# Copyright (c) 2022-2024, NVIDIA CORPORATION & AFFILIATES. All rights reserved.
#
# See LICENSE for license information.

"""Top level package"""
from . import common

try:
    from . import pytorch
except ImportError as e:
    pass

try:
    from . import jax
except ImportError as e:
    pass
