"""Naming conventions and configured attribute names: the weakest evidence of a device.

`seq_lens_cpu` is usually a host copy and `x_gpu` a device tensor, `device` usually
holds a `torch.device`: useful when nothing better is known, never proof. Facts
that come only from a name are marked `from_name`, so rules can tell them apart.
No libcst here: the configuration loads these defaults without importing a parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from sync_lint.analysis.facts import DTYPE, Device, Fact, device_value

CPU_NAMES_DEFAULT = (r"_cpu$", r"_host$", r"^cpu_")
GPU_NAMES_DEFAULT = (r"_gpu$", r"_cuda$", r"_dev$")
DEVICE_NAME = re.compile(r"(^|_)(device|dev)(_|$)|^device|device$")
DTYPE_NAME = re.compile(r"dtype")


def path_matches(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether one of the regexes `patterns` (`cpu-modules`, `other-platform-modules`) is found in `path`
    (within its project, `/`-separated)."""
    return any(pattern.search(path) for pattern in _compiled(patterns))


@lru_cache(maxsize=16)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


def cpu_function(qualname: str | None, names: tuple[str, ...]) -> str | None:
    """The function of `qualname`, or one it is nested in, whose name is one of `names` (its qualname):
    a platform-dispatched operator's `forward_cpu` runs only on a CPU machine (`cpu-functions`)."""
    if qualname is None or not names:
        return None
    parts = qualname.split(".")
    for index, part in enumerate(parts):
        if part in names:
            return ".".join(parts[:index + 1])
    return None


@dataclass
class DeviceSettings:
    cpu_name_patterns: tuple[str, ...] = CPU_NAMES_DEFAULT
    gpu_name_patterns: tuple[str, ...] = GPU_NAMES_DEFAULT
    gpu_attributes: frozenset[str] = frozenset()
    cpu_attributes: frozenset[str] = frozenset()
    cpu_functions: tuple[str, ...] = ("forward_cpu",)  # `cpu-functions`: see `cpu_function`
    # `cpu-modules` and `other-platform-modules`: patterns of the files written for another platform.
    off_cuda_modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._cpu = [re.compile(p) for p in self.cpu_name_patterns]
        self._gpu = [re.compile(p) for p in self.gpu_name_patterns]
        self._by_name: dict[str, Fact | None] = {}
        self._off_cuda_paths: dict[str, bool] = {}

    def off_cuda_module(self, path: str) -> bool:
        """Whether the file at `path` (within its project, `/`-separated) is written for a platform
        other than CUDA (`cpu-modules`, `other-platform-modules`)."""
        known = self._off_cuda_paths.get(path)
        if known is None:
            known = self._off_cuda_paths[path] = path_matches(path, self.off_cuda_modules)
        return known

    def by_name(self, name: str) -> tuple[Device, str] | None:
        for pattern in self._cpu:
            if pattern.search(name):
                return Device.CPU, f"its name matches the cpu-name-pattern `{pattern.pattern}`"
        for pattern in self._gpu:
            if pattern.search(name):
                return Device.GPU, f"its name matches the gpu-name-pattern `{pattern.pattern}`"
        return None

    def fact_for_name(self, name: str) -> Fact | None:
        """What a name alone suggests: a tensor on a device, a device value, a dtype; None for nothing."""
        if name not in self._by_name:
            self._by_name[name] = self._fact_for_name(name)
        return self._by_name[name]

    def _fact_for_name(self, name: str) -> Fact | None:
        by_name = self.by_name(name)
        if by_name is not None:
            dev, why = by_name
            return Fact(dev, tensor_like=True, subject=name, reason=why, from_name=True,
                        pinning_unknown=dev is Device.CPU)
        lowered = name.lower()
        if DEVICE_NAME.search(lowered):
            dev = Device.CPU if "cpu" in lowered else Device.GPU
            return device_value(dev, reason=f"a variable named `{name}`")
        if DTYPE_NAME.search(lowered):
            return DTYPE
        return None
