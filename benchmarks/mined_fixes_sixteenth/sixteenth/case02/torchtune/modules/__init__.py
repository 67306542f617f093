# Copyright (c) Meta Platforms, Inc. and affiliates.
# All rights reserved.
#
# This source code is licensed under the BSD-style license found in the
# LICENSE file in the root directory of this source tree.

from .attention import MultiHeadAttention  # noqa
# (benchmark cut: common_utils, feed_forward, layer_norm, low_precision, lr_schedulers, position_embeddings, rms_norm, tanh_gate, vision_transformer re-exports)
from .kv_cache import KVCache  # noqa
from .transformer import (  # noqa
    TransformerDecoder,
    TransformerSelfAttentionLayer,
)
# (benchmark cut: TiedEmbeddingTransformerDecoder, TransformerCrossAttentionLayer re-exports)

__all__ = [
    "MultiHeadAttention",
    "KVCache",
    "TransformerDecoder",
    "TransformerSelfAttentionLayer",
]
