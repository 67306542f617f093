# (benchmark cut: only AttentionArch is used here)
from enum import IntEnum, auto


class AttentionArch(IntEnum):
    MLA = auto()
    MHA = auto()
