from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch

if TYPE_CHECKING:
    from sglang.srt.model_executor.forward_batch_info import ForwardBatch
    from sglang.srt.model_executor.model_runner import ModelRunner


class FlashInferMLAAttnBackend:
    """Flashinfer attention kernels (planning cut)."""

    def __init__(
        self,
        model_runner: ModelRunner,
        skip_prefill: bool = False,
        kv_indptr_buf: Optional[torch.Tensor] = None,
        q_indptr_decode_buf: Optional[torch.Tensor] = None,
    ):
        self.device = model_runner.device
        self.skip_prefill = skip_prefill

    def init_forward_metadata(self, forward_batch: ForwardBatch):
        # flashinfer wrapper planning (cut)
        pass
