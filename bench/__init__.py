import sys as _sys
from pathlib import Path as _Path

# The benchmarks start `mlflow server`s with the tests' helper (tests/localserver.py): it is
# test tooling, so it lives with the tests and is not shipped in the wheel.
_TESTS = str(_Path(__file__).resolve().parent.parent / "tests")
if _TESTS not in _sys.path:
    _sys.path.insert(0, _TESTS)
