# SPDX-License-Identifier: LGPL-3.0-or-later
from .denoise import (
    DenoiseLoss,
)
from .ener import (
    EnergyStdLoss,
)
from .ener_spin import (
    EnergySpinLoss,
)
from .loss import (
    TaskLoss,
)
from .tensor import (
    TensorLoss,
)

__all__ = [
    "DenoiseLoss",
    "EnergyStdLoss",
    "EnergySpinLoss",
    "TensorLoss",
    "TaskLoss",
]
