# Copyright (c) OpenMMLab. All rights reserved.
from .base import OpType  # noqa: F401
from .selector import get_backend  # noqa: F401
