# (benchmark cut: other callback re-exports)
from .grad_clipper import GradClipperCallback

__all__ = ["GradClipperCallback"]
