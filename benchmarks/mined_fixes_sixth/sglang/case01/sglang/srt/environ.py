# (benchmark cut: stand-in for the real Envs registry; only the flag read here is kept)
import os


class EnvBool:
    def __init__(self, default: bool, name: str):
        self.default = default
        self.name = name

    def get(self) -> bool:
        value = os.environ.get(self.name)
        if value is None:
            return self.default
        return value.lower() in ("1", "true", "yes")


class Envs:
    SGLANG_VIT_ENABLE_CUDA_GRAPH = EnvBool(False, "SGLANG_VIT_ENABLE_CUDA_GRAPH")


envs = Envs()
