# (benchmark cut: only MultimodalDataItem is used here, reduced to the fields read by the model)
import dataclasses
from typing import Any, Dict, Optional

import torch


@dataclasses.dataclass
class MultimodalDataItem:
    # (benchmark cut: modality, hashes, offsets, precomputed embeddings)
    feature: Optional[torch.Tensor] = None
    model_specific_data: Dict[str, Any] = dataclasses.field(default_factory=dict)
