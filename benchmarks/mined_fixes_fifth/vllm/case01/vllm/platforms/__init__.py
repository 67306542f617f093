# SPDX-License-Identifier: Apache-2.0
# Cut down: only what the indexer builder asks of the platform.
import torch


class CudaPlatform:
    device_type: str = "cuda"

    def is_cuda(self) -> bool:
        return True

    def is_rocm(self) -> bool:
        return False

    def set_device(self, device: torch.device) -> None:
        torch.cuda.set_device(device)

    def num_compute_units(self, device_id: int = 0) -> int:
        return torch.cuda.get_device_properties(device_id).multi_processor_count


current_platform = CudaPlatform()
