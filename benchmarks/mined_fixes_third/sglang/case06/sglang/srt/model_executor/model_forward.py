# Caller chain as in ModelRunner.forward_extend: the attention backend's
# metadata is built once per batch, then every GDN layer calls
# attn_backend.forward_extend (HybridLinearAttnBackend -> GDNAttnBackend).
from sglang.srt.layers.attention.hybrid_linear_attn_backend import (
    HybridLinearAttnBackend,
)
from sglang.srt.model_executor.forward_batch_info import ForwardBatch


def forward_extend(attn_backend: HybridLinearAttnBackend, layers, forward_batch: ForwardBatch, mixed_qkv, a, b):
    attn_backend.init_forward_metadata(forward_batch)
    outs = []
    for layer in layers:
        outs.append(
            attn_backend.forward_extend(
                layer=layer, forward_batch=forward_batch, mixed_qkv=mixed_qkv, a=a, b=b
            )
        )
    return outs
