# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to the per-layer attention metadata and the layer registry.
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

_forward_context: "ForwardContext | None" = None


@dataclass
class ForwardContext:
    no_compile_layers: dict[str, Any]
    attn_metadata: dict[str, Any] | list[dict[str, Any]] | None


def get_forward_context() -> ForwardContext:
    assert _forward_context is not None, (
        "Forward context is not set. "
        "Please use `set_forward_context` to set the forward context."
    )
    return _forward_context


@contextmanager
def set_forward_context(attn_metadata: Any, vllm_config: Any, no_compile_layers=None):
    global _forward_context
    prev_context = _forward_context
    _forward_context = ForwardContext(
        no_compile_layers=no_compile_layers or {},
        attn_metadata=attn_metadata,
    )
    try:
        yield
    finally:
        _forward_context = prev_context
