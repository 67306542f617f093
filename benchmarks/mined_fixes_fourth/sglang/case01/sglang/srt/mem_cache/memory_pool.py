from dataclasses import dataclass
from typing import List

import torch


class MambaPool:
    @dataclass(frozen=True, kw_only=True)
    class State:
        conv: List[torch.Tensor]
        temporal: torch.Tensor

        def at_layer_idx(self, layer: int):
            return type(self)(
                conv=[c[layer] for c in self.conv], temporal=self.temporal[layer]
            )

    def __init__(
        self, *, size: int, num_layers: int, conv_shape, temporal_shape, device: str
    ):
        self.size = size
        self.device = device
        conv_state = [
            torch.zeros(
                size=(num_layers, size + 1) + conv_shape,
                dtype=torch.bfloat16,
                device=device,
            )
        ]
        temporal_state = torch.zeros(
            size=(num_layers, size + 1) + temporal_shape,
            dtype=torch.float32,
            device=device,
        )
        self.mamba_cache = self.State(conv=conv_state, temporal=temporal_state)

    def mamba2_layer_cache(self, layer_id: int):
        return self.mamba_cache.at_layer_idx(layer_id)


class HybridReqToTokenPool:
    def __init__(self, *, size: int, mamba_pool: MambaPool, mamba_layers, device: str):
        self.size = size
        self.device = device
        self.mamba_pool = mamba_pool
        self.mamba_map = {layer_id: i for i, layer_id in enumerate(mamba_layers)}
        self.req_index_to_mamba_index_mapping: torch.Tensor = torch.zeros(
            size, dtype=torch.int32, device=self.device
        )

    def get_mamba_indices(self, req_indices: torch.Tensor) -> torch.Tensor:
        return self.req_index_to_mamba_index_mapping[req_indices]

    def translate_mamba_indices(self, mamba_indices: torch.Tensor) -> torch.Tensor:
        return mamba_indices

    def mamba2_layer_cache(self, layer_id: int):
        assert layer_id in self.mamba_map
        return self.mamba_pool.mamba2_layer_cache(self.mamba_map[layer_id])
