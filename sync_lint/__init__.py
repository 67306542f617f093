"""sync-lint: find, fix and verify hidden GPU<->CPU synchronizations in PyTorch code."""

__version__ = "0.1.0"

# Where this repository is published; documentation links point into its docs/ folder at the
# release tag (`v` + __version__). Kept in step with `[project.urls]` in pyproject.toml
# (tests/test_daily_use.py checks it): change both when publishing under another name.
REPOSITORY = "https://github.com/OWNER/sync-lint"
