# (benchmark cut: license header, version file, logging setup, external-module and modelscope hooks, NPU patches)
from .protocol import DataProto

__all__ = ["DataProto", "__version__"]
