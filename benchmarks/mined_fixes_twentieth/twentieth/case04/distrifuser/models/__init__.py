from .naive_patch_dit import NaivePatchDiT
from .distri_dit_pp import DistriDiTPP
from .distri_dit_pip import DistriDiTPiP
