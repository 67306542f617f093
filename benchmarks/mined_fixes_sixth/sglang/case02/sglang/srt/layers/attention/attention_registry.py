ATTENTION_BACKENDS = {}


def register_attention_backend(name):
    def decorator(fn):
        ATTENTION_BACKENDS[name] = fn
        return fn

    return decorator


# (benchmark cut: the other registered backends)


@register_attention_backend("hybrid_linear_attn")
def create_hybrid_linear_attn_backend(runner):
    assert (
        runner.is_hybrid_gdn
    ), "hybrid_linear_attn backend can only be used with hybrid GDN models."
    from sglang.srt.layers.attention.hybrid_linear_attn_backend import (
        HybridLinearAttnBackend,
        MambaAttnBackend,
    )

    # (benchmark cut: NPU / Blackwell full-attention backend choice)
    from sglang.srt.layers.attention.flashattention_backend import (
        FlashAttentionBackend,
    )

    full_attn_backend = FlashAttentionBackend(runner)

    linear_attn_backend = MambaAttnBackend(runner)
    full_attn_layers = runner.model_config.hf_config.full_attention_layer_ids

    return HybridLinearAttnBackend(
        full_attn_backend, linear_attn_backend, full_attn_layers
    )
