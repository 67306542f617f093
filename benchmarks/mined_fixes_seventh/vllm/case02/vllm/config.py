# (benchmark cut: every config class except DeviceConfig)
import torch


class CudaPlatformStandIn:
    # (benchmark cut: vllm.platforms; the CUDA platform reports "cuda")
    device_type = "cuda"


class DeviceConfig:

    def __init__(self, device: str = "auto") -> None:
        if device == "auto":
            # Automated device type detection
            current_platform = CudaPlatformStandIn()
            self.device_type = current_platform.device_type
            if not self.device_type:
                raise RuntimeError("Failed to infer device type")
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
