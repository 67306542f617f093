from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class LoRABatchInfo:
    # Whether cuda graph is enabled
    use_cuda_graph: bool

    # Batch size
    bs: int

    # Number of segments. For triton backend, it is equal to batch size.
    num_segments: int

    # Indice pointers of each segment in shape (num_segments + 1, )
    seg_indptr: torch.Tensor

    # The index of lora adapter used by each segment, in shape (num_segments,)
    weight_indices: torch.Tensor

    # ranks of each lora adapter, in shape (lora_num,)
    lora_ranks: torch.Tensor

    # scaling of each lora adapter, in shape (lora_num,)
    scalings: torch.Tensor

    req_weight_indices: Optional[torch.Tensor] = None
    req_seg_indptr: Optional[torch.Tensor] = None
