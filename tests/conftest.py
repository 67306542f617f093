import os
import sys
from pathlib import Path

# A daemon the developer started (`sync-lint daemon start`) would run the tests' `sync-lint check`
# subprocesses; only tests/test_daemon.py uses one, its own.
os.environ["SYNC_LINT_NO_DAEMON"] = "1"

# Test helpers (fixture_support) live beside the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent))
