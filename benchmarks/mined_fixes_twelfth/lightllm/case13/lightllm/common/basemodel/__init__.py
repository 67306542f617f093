# (benchmark cut: layer weight base classes, pre/post layer infer and their templates)
from .layer_infer.template.transformer_layer_infer_template import TransformerLayerInferTpl
from .infer_struct import InferStateInfo
from .splitfuse_infer_struct import SplitFuseInferStateInfo
from .basemodel import TpPartBaseModel


__all__ = [
    "TransformerLayerInferTpl",
    "InferStateInfo",
    "TpPartBaseModel",
    "SplitFuseInferStateInfo",
]
