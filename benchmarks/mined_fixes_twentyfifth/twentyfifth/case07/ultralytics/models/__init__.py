# Ultralytics YOLO 🚀, AGPL-3.0 license

from .rtdetr import RTDETR
from .sam import SAM
from .yolo import YOLO

__all__ = 'YOLO', 'RTDETR', 'SAM'  # allow simpler import
