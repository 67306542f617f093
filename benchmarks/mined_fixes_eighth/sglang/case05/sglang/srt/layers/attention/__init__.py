from abc import ABC, abstractmethod
from typing import Optional

import torch
from torch import nn

from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class AttentionBackend(ABC):
    """The base class of attention backends"""

    @abstractmethod
    def init_forward_metadata(self, forward_batch: ForwardBatch):
        """Init the metadata for a forward pass."""
        raise NotImplementedError()

    # (benchmark cut: cuda graph hooks, forward / forward_decode / forward_extend)
