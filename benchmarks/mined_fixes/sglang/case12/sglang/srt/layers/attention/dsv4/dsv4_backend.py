from typing import Optional

import torch

from sglang.srt.layers.attention.dsv4.sparse_prefill import SparsePrefillChunkCache
from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class DeepseekV4AttnBackend:
    def __init__(self, model_runner):
        self.device = model_runner.device
        self.req_to_token = model_runner.req_to_token_pool.req_to_token
        self.token_to_kv_pool = model_runner.token_to_kv_pool
        self.swa_window = model_runner.model_config.sliding_window
        self._prefill_chunk_cache: Optional[SparsePrefillChunkCache] = None

    def init_forward_metadata(self, forward_batch: ForwardBatch):
        if not forward_batch.forward_mode.is_decode_or_idle():
            self._prefill_chunk_cache = SparsePrefillChunkCache.build(
                forward_batch,
                self.req_to_token,
                self.token_to_kv_pool.full_to_swa_index_mapping,
                self.swa_window,
            )
