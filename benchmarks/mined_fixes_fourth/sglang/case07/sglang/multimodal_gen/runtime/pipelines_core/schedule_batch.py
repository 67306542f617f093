from dataclasses import dataclass, field
from typing import Any, Optional

import torch


@dataclass
class Req:
    num_inference_steps: int = 50
    timesteps: Optional[torch.Tensor] = None
    sigmas: Optional[list] = None
    scheduler: Any = None
    latents: Optional[torch.Tensor] = None
    extra: dict = field(default_factory=dict)
