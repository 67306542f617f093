from .attention import (
    AttnOutputs,
    GatedDeltaNet,
    GatedDeltaNetConfig,
    MHAConfig,
    MLAConfig,
    MultiHeadAttention,
    MultiLatentAttention,
)
from .dispatcher import NaiveDispatcher, TorchAll2AllDispatcher, build_dispatcher
from .lm_head import LMHead
from .rms_norm import RMSNorm
from .rope import (
    Qwen3VLTextRotaryEmbedding,
    RopeScalingConfig,
    RotaryEmbedding,
    RotaryEmbeddingProtocol,
    get_rope_embedding,
)
from .router import GreedyRouter, GreedyRouterConfig, NoAuxRouter, NoAuxRouterConfig, RouterResults


# WARN: Optional dependency related module should never be imported here, such as `GroupedLinear`

__all__ = [
    "RMSNorm",
    "MultiHeadAttention",
    "MultiLatentAttention",
    "MHAConfig",
    "MLAConfig",
    "GatedDeltaNetConfig",
    "GatedDeltaNet",
    "AttnOutputs",
    "RopeScalingConfig",
    "RotaryEmbedding",
    "TorchAll2AllDispatcher",
    "NaiveDispatcher",
    "build_dispatcher",
    "NoAuxRouter",
    "NoAuxRouterConfig",
    "GreedyRouter",
    "GreedyRouterConfig",
    "RouterResults",
    "LMHead",
    "Qwen3VLTextRotaryEmbedding",
    "get_rope_embedding",
    "RotaryEmbeddingProtocol",
]
