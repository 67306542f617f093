# SPDX-License-Identifier: LGPL-3.0-or-later

from .exclude_mask import (
    AtomExcludeMask,
    PairExcludeMask,
)

__all__ = [
    "PairExcludeMask",
    "AtomExcludeMask",
]
