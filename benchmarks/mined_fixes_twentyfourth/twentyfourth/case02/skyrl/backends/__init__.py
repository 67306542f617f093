"""Tinker engine backends."""

from skyrl.backends.backend import AbstractBackend

__all__ = ["AbstractBackend"]
