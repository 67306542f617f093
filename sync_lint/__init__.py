"""sync-lint: find, fix and verify hidden GPU<->CPU synchronizations in PyTorch code."""

__version__ = "0.1.0"
