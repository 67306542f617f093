# (benchmark cut: layer weight / layer infer base classes and templates)
from .infer_struct import InferStateInfo
from .splitfuse_infer_struct import SplitFuseInferStateInfo
from .basemodel import TpPartBaseModel


__all__ = [
    "InferStateInfo",
    "TpPartBaseModel",
    "SplitFuseInferStateInfo",
]
