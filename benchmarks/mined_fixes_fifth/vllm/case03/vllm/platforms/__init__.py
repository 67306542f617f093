# SPDX-License-Identifier: Apache-2.0
# Cut down: only what the worker asks of the platform.
import torch


class CudaPlatform:
    device_type: str = "cuda"

    def set_device(self, device: torch.device) -> None:
        torch.cuda.set_device(device)


current_platform = CudaPlatform()
