from dataclasses import dataclass

import torch

from vllm.distributed.eplb.rebalance_execute import (
    rearrange_expert_weights_inplace)


@dataclass
class EplbModelState:
    physical_to_logical_map: torch.Tensor
    logical_to_physical_map: torch.Tensor
    logical_replica_count: torch.Tensor
    expert_load_pass: torch.Tensor
    expert_load_window: torch.Tensor


class EplbState:

    def __init__(self, parallel_config, device: torch.device):
        self.parallel_config = parallel_config
        self.device = device
        self.model_states: dict[str, EplbModelState] = {}

    def add_model(self, model, model_config, num_layers: int,
                  num_physical: int, num_logical: int, max_slots: int):
        physical_to_logical_map = torch.arange(
            num_physical, device=self.device).repeat(num_layers, 1)
        self.model_states[model_config.compute_hash()] = EplbModelState(
            physical_to_logical_map=physical_to_logical_map,
            logical_to_physical_map=torch.full(
                (num_layers, num_logical, max_slots), -1, device=self.device),
            logical_replica_count=torch.zeros((num_layers, num_logical),
                                              device=self.device,
                                              dtype=torch.long),
            expert_load_pass=torch.zeros((num_layers, num_physical),
                                         device=self.device,
                                         dtype=torch.int32),
            expert_load_window=torch.zeros((8, num_layers, num_physical),
                                           device=self.device,
                                           dtype=torch.int32),
        )

    def rearrange(self, model, ep_group, new_physical_to_logical_map) -> None:
        for eplb_model_state in self.model_states.values():
            rearrange_expert_weights_inplace(
                eplb_model_state.physical_to_logical_map,
                new_physical_to_logical_map,
                model.expert_weights,
                ep_group,
            )
