from __future__ import annotations

from typing import Any, Callable, Dict, Optional

# (benchmark cut: the registry-backed SpeculativeAlgorithm metaclass, flags,
#  register_speculative_algorithm and the SpecInput base classes; the eagle
#  factory below is verbatim)

DraftWorkerFactory = Callable[..., Any]


class SpeculativeAlgorithm:
    """Registry-backed representation of speculative decoding algorithms."""

    _registry_by_name: Dict[str, "SpeculativeAlgorithm"] = {}

    def __init__(
        self,
        name: str,
        value: int,
        draft_worker_factory: Optional[DraftWorkerFactory] = None,
    ):
        self.name = name
        self.value = value
        self._draft_worker_factory = draft_worker_factory

    @classmethod
    def from_string(cls, name: Optional[str]) -> SpeculativeAlgorithm:
        if name is None:
            return cls._registry_by_name["NONE"]
        return cls._registry_by_name[name.upper()]

    def is_none(self) -> bool:
        return self.name == "NONE"

    def is_eagle(self) -> bool:
        return self.name in ("EAGLE", "EAGLE3")

    def create_draft_worker(self, **factory_kwargs: Any) -> Any:
        if self._draft_worker_factory is None:
            return None
        return self._draft_worker_factory(self, **factory_kwargs)


def _create_eagle_worker(**kwargs: Any) -> Any:
    enable_overlap = kwargs.pop("enable_overlap", False)
    if enable_overlap:
        from sglang.srt.speculative.eagle_worker_v2 import EAGLEWorkerV2

        return EAGLEWorkerV2(**kwargs)

    from sglang.srt.speculative.eagle_worker import EAGLEWorker

    return EAGLEWorker(**kwargs)


def _wrap_factory(factory: Callable[..., Any]) -> DraftWorkerFactory:
    def _factory(_: SpeculativeAlgorithm, **kwargs: Any) -> Any:
        return factory(**kwargs)

    return _factory


for _name, _value, _factory_fn in (
    ("NONE", 0, None),
    ("EAGLE", 1, _create_eagle_worker),
    ("EAGLE3", 2, _create_eagle_worker),
):
    SpeculativeAlgorithm._registry_by_name[_name] = SpeculativeAlgorithm(
        _name,
        _value,
        draft_worker_factory=(
            _wrap_factory(_factory_fn) if _factory_fn is not None else None
        ),
    )


# (benchmark cut: SpecInputType members other than the two used here)
class SpecInputType:
    EAGLE_DRAFT = 1
    EAGLE_VERIFY = 2


class SpecInput:
    def __init__(self, spec_input_type):
        self.spec_input_type = spec_input_type

    def is_draft_input(self) -> bool:
        return self.spec_input_type == SpecInputType.EAGLE_DRAFT

    def is_verify_input(self) -> bool:
        return self.spec_input_type == SpecInputType.EAGLE_VERIFY
