# Copyright (c) 2023-2025, Songlin Yang, Yu Zhang

from .abc import ABCAttention
from .attn import Attention
from .based import BasedLinearAttention
from .bitattn import BitAttention
from .comba import Comba
from .delta_net import DeltaNet
from .deltaformer import DeltaFormerAttention
from .forgetting_attn import ForgettingAttention
from .gated_deltanet import GatedDeltaNet
from .gated_deltaproduct import GatedDeltaProduct
from .gla import GatedLinearAttention
from .gsa import GatedSlotAttention
from .hgrn import HGRNAttention
from .hgrn2 import HGRN2Attention
from .kda import KimiDeltaAttention
from .lightnet import LightNetAttention
from .linear_attn import LinearAttention
from .log_linear_mamba2 import LogLinearMamba2
from .mamba import Mamba
from .mamba2 import Mamba2
from .mesa_net import MesaNet
from .mla import MultiheadLatentAttention
from .mom import MomAttention
from .multiscale_retention import MultiScaleRetention
from .nsa import NativeSparseAttention
from .path_attn import PaTHAttention
from .rebased import ReBasedLinearAttention
from .rodimus import RodimusAttention, SlidingWindowSharedKeyAttention
from .rwkv6 import RWKV6Attention
from .rwkv7 import RWKV7Attention

__all__ = [
    'ABCAttention',
    'Attention',
    'BasedLinearAttention',
    'BitAttention',
    'Comba',
    'DeltaNet',
    'ForgettingAttention',
    'GatedDeltaNet',
    'GatedDeltaProduct',
    'GatedLinearAttention',
    'GatedSlotAttention',
    'HGRNAttention',
    'HGRN2Attention',
    'KimiDeltaAttention',
    'LightNetAttention',
    'LinearAttention',
    'LogLinearMamba2',
    'Mamba',
    'Mamba2',
    'MesaNet',
    'MomAttention',
    'MultiheadLatentAttention',
    'MultiScaleRetention',
    'NativeSparseAttention',
    'PaTHAttention',
    'ReBasedLinearAttention',
    'RodimusAttention',
    'RWKV6Attention',
    'RWKV7Attention',
    'SlidingWindowSharedKeyAttention',
    'DeltaFormerAttention',
]
