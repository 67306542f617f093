from abc import ABC


class AttentionBackend(ABC):
    """The base class of attention backends"""
