"""The delivery core's unit tests: real dispatcher and sender threads, a fake store, no
server, no files beyond tmp_path, no sleeps."""
import logging

import pytest

from . import fakes


@pytest.fixture(autouse=True)
def _no_gc_freeze(monkeypatch):
    # Sender.start() freezes the heap after connecting (for MLflow's objects): not in a test run.
    monkeypatch.setenv("AZML_GC_FREEZE", "0")


@pytest.fixture
def core():
    """``fakes.start_core``; every dispatcher made is closed at the end of the test."""
    made = []

    def start(*args, **kwargs):
        dispatcher = fakes.start_core(*args, **kwargs)
        made.append(dispatcher)
        return dispatcher

    yield start
    for dispatcher in made:
        dispatcher.close(10.0)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def warnings_said():
    """The ``azml`` logger's warnings during the test (a handler of its own: whatever the
    package does with propagation, every line is seen)."""
    handler = _Lines()
    logger = logging.getLogger("azml")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)
