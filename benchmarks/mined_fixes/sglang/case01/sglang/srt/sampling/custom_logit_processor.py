import json
from abc import ABC, abstractmethod
from typing import Any, Dict, List, Optional

import dill
import torch


class CustomLogitProcessor(ABC):
    """Abstract base class for callable functions."""

    @abstractmethod
    def __call__(
        self,
        logits: torch.Tensor,
        custom_param_list: Optional[List[Dict[str, Any]]] = None,
    ) -> torch.Tensor:
        """Define the callable behavior."""
        raise NotImplementedError

    @classmethod
    def from_str(cls, json_str: str):
        """Deserialize a callable function from a JSON string."""
        data = json.loads(json_str)
        return dill.loads(bytes.fromhex(data["callable"]))
