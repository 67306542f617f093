from vllm.attention.backends.abstract import (AttentionBackend,
                                              AttentionMetadata,
                                              AttentionMetadataBuilder)
from vllm.attention.selector import get_attn_backend

__all__ = [
    "AttentionBackend", "AttentionMetadata", "AttentionMetadataBuilder",
    "get_attn_backend"
]
