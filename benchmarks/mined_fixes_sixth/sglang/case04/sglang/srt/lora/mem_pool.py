from typing import Dict, List, Optional, Set, Tuple

import torch

# (benchmark cut: A/B weight buffers, init_buffers, load_lora_weight_to_buffer and get_tensor)


class LoRAMemoryPool:
    """Class for memory pool management of lora modules"""

    def __init__(self, max_loras_per_batch: int):
        self.max_loras_per_batch: int = max_loras_per_batch

        # Lora uid -> buffer idx in memory pool
        self.uid_to_buffer_id: Dict[Optional[str], int] = {}

        # Buffer idx -> lora uid in memory pool
        # All uids are initialized as empty strings for empty buffer slots
        # Here we don't initialize to None since None is a valid uid
        self.buffer_id_to_uid: List[Optional[str]] = [""] * self.max_loras_per_batch

    def prepare_lora_batch(self, cur_uids: Set[Optional[str]], lora_adapters):
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
                # (benchmark cut: load_lora_weight_to_buffer)
                self.uid_to_buffer_id[uid] = buffer_id
                self.buffer_id_to_uid[buffer_id] = uid

    def get_buffer_id(self, lora_uid: str):
        return self.uid_to_buffer_id[lora_uid]
