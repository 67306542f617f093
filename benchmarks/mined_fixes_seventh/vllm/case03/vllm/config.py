# (benchmark cut: every config class except DeviceConfig)
from typing import Optional

import torch


class DeviceConfig:
    device: Optional[torch.device]

    def __init__(self, device: str = "auto") -> None:
        if device == "auto":
            # Automated device type detection
            # (benchmark cut: neuron/openvino/tpu/cpu/xpu probing)
            # We don't call torch.cuda.is_available() here to
            # avoid initializing CUDA before workers are forked
            self.device_type = "cuda"
        else:
            # Device type is assigned explicitly
            self.device_type = device

        # Some device types require processing inputs on CPU
        if self.device_type in ["neuron", "openvino"]:
            self.device = torch.device("cpu")
        elif self.device_type in ["tpu"]:
            self.device = None
        else:
            # Set device with device type
            self.device = torch.device(self.device_type)
