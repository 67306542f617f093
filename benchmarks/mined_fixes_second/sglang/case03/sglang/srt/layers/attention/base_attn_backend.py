from abc import ABC


class AttentionBackend(ABC):
    """The base class of attention backends"""

    def __init__(self):
        pass
