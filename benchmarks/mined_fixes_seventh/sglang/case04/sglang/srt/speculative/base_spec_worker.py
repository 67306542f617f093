from __future__ import annotations

from abc import ABC
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sglang.srt.managers.tp_worker import TpModelWorker


class BaseSpecWorker(ABC):
    # (benchmark cut: other members)

    @property
    def target_worker(self) -> TpModelWorker:
        return self._target_worker
