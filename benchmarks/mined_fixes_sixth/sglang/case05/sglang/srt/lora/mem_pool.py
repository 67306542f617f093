from typing import Dict, List, Optional, Set, Tuple

import torch

from sglang.srt.hf_transformers_utils import AutoConfig
from sglang.srt.lora.layers import BaseLayerWithLoRA
from sglang.srt.lora.utils import (
    LoRAType,
    get_stacked_multiply,
    get_weight_name,
)

# (benchmark cut: divide, LoRAAdapter, ROW_PARALLELISM_LINEAR_LORA_NAMES and get_hidden_dim imports)


class LoRAMemoryPool:
    """Class for memory pool management of lora modules"""

    def __init__(
        self,
        base_hf_config: AutoConfig,
        max_loras_per_batch: int,
        max_lora_dim: int,
        dtype: torch.dtype,
        tp_size: int,
        tp_rank: int,
        lora_modules: Dict[int, List[Tuple[str, BaseLayerWithLoRA]]],
    ):

        self.base_hf_config: AutoConfig = base_hf_config
        self.num_layer: int = base_hf_config.num_hidden_layers
        self.max_loras_per_batch: int = max_loras_per_batch
        self.max_lora_dim: int = max_lora_dim
        self.dtype: torch.dtype = dtype
        self.tp_size: int = tp_size
        self.tp_rank: int = tp_rank
        self.lora_modules: Dict[int, List[Tuple[str, BaseLayerWithLoRA]]] = lora_modules

        # Both A_buffer and B_buffer maps lora weight names to its buffer space.
        # A_buffer contains num_layer number of row-major tensors with shape
        #   (max_loras_per_batch, stacked_num * max_lora_dim, input_dim)
        # B_buffer contains num_layer number of column-major tensors with shape
        #   (stacked_num, max_loras_per_batch, output_dim, max_lora_dim)
        self.A_buffer: Dict[str, List[torch.Tensor]] = {}
        self.B_buffer: Dict[str, List[torch.Tensor]] = {}

        # Lora uid -> buffer idx in memory pool
        self.uid_to_buffer_id: Dict[Optional[str], int] = {}

        # Buffer idx -> lora uid in memory pool
        # All uids are initialized as empty strings for empty buffer slots
        # Here we don't initialize to None since None is a valid uid
        self.buffer_id_to_uid: List[Optional[str]] = [""] * self.max_loras_per_batch

    # (benchmark cut: get_lora_A_shape / get_lora_B_shape compute the buffer shapes from the
    # hf config and the base model; stand-ins below)
    def get_lora_A_shape(self, module_name: str, base_model: torch.nn.Module) -> Tuple[int]:
        return (self.max_loras_per_batch, self.max_lora_dim * get_stacked_multiply(module_name), 8)

    def get_lora_B_shape(self, module_name: str, base_model: torch.nn.Module) -> Tuple[int]:
        return (get_stacked_multiply(module_name), self.max_loras_per_batch, 8, self.max_lora_dim)

    def init_buffers(
        self,
        lora_weight_names: Tuple[Set[str]],
        base_model: torch.nn.Module,
    ):

        # lora_weight_names is a set of name pairs indicating each pair of lora modules to load
        #   e.g., {("qkv_proj", "q_proj"), ("qkv_proj", "kv_proj"), ("o_proj", "o_proj")}
        self.lora_weight_names: Tuple[Set[str]] = lora_weight_names
        device = next(base_model.parameters()).device
        # Init A tensor, column_major=False
        for module_A in lora_weight_names[0]:
            lora_A_shape = self.get_lora_A_shape(module_A, base_model)
            self.A_buffer[module_A] = [
                torch.empty(
                    lora_A_shape,
                    dtype=self.dtype,
                    device=device,
                )
                for _ in range(self.num_layer)
            ]
        # Init B tensor, column_major=True
        for module_B in lora_weight_names[1]:
            lora_B_shape = self.get_lora_B_shape(module_B, base_model)
            self.B_buffer[module_B] = [
                torch.empty(
                    lora_B_shape,
                    dtype=self.dtype,
                    device=device,
                )
                for _ in range(self.num_layer)
            ]

    def prepare_lora_batch(
        self,
        cur_uids: Set[Optional[str]],
        lora_adapters: Dict[str, LoRAAdapter],
    ):

        def get_available_buffer_slot():
            for buffer_id in range(self.max_loras_per_batch):
                # Prioritize empty slots
                if self.buffer_id_to_uid[buffer_id] == "":
                    return buffer_id, ""

            for buffer_id in range(self.max_loras_per_batch):
                # Evict unneeded lora
                if self.buffer_id_to_uid[buffer_id] not in cur_uids:
                    return buffer_id, self.buffer_id_to_uid[buffer_id]

            raise ValueError(
                "No available buffer slots found. Please ensure the number of active loras is less than max_loras_per_batch."
            )

        for uid in cur_uids:
            if uid not in self.uid_to_buffer_id:
                buffer_id, evicted_lora_uid = get_available_buffer_slot()
                if evicted_lora_uid != "":
                    self.uid_to_buffer_id.pop(evicted_lora_uid)
                # (benchmark cut: load_lora_weight_to_buffer copies the adapter weights into the slot)
                self.uid_to_buffer_id[uid] = buffer_id
                self.buffer_id_to_uid[buffer_id] = uid

    # (benchmark cut: load_lora_weight_to_buffer)

    def get_tensor(
        self, weight_name: str, layer_id: int, lora_type: LoRAType
    ) -> torch.Tensor:

        if lora_type == LoRAType.LORA_A:
            return self.A_buffer[weight_name][layer_id]

        return self.B_buffer[weight_name][layer_id]

    def get_buffer_id(self, lora_uid: str):
        return self.uid_to_buffer_id[lora_uid]
