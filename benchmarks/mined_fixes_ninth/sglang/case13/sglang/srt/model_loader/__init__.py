# (benchmark cut: license header)

from __future__ import annotations

from sglang.srt.model_loader.loader import BaseModelLoader, get_model_loader

# (benchmark cut: get_model and the architecture helpers re-exported from model_loader.utils)
