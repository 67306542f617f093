import torch.nn as nn

from vllm.platforms import current_platform


class CustomOp(nn.Module):
    """
    Base class for custom ops.
    Dispatches the forward method to the appropriate backend.
    """

    def __init__(self):
        super().__init__()
        self._forward_method = self.dispatch_forward()

    def forward(self, *args, **kwargs):
        return self._forward_method(*args, **kwargs)

    def forward_native(self, *args, **kwargs):
        raise NotImplementedError

    def forward_cuda(self, *args, **kwargs):
        raise NotImplementedError

    def forward_cpu(self, *args, **kwargs):
        return self.forward_native(*args, **kwargs)

    def dispatch_forward(self):
        enabled = self.enabled()
        if not enabled:
            return self.forward_native
        if current_platform.is_cpu():
            return self.forward_cpu
        return self.forward_cuda

    @classmethod
    def enabled(cls) -> bool:
        return True

    @classmethod
    def register(cls, name: str):

        def decorator(op_cls):
            return op_cls

        return decorator
