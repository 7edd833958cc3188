"""What every face (the Workbench logger, SDK v1's ``Run``) holds of the session it logs to:
its hot-path callables, bound once so a log call is one dict lookup and one method call."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._session import Session


class Face:
    """Bound to one session; ``_process`` rebinds the process's faces after ``os.fork``."""

    _session: "Session"

    def _bind(self, session: "Session") -> None:
        """Log through ``session`` from now on. After ``os.fork`` the child rebinds the objects
        the script already holds (module globals, class attributes) to its own session."""
        self._session = session
        self._key_of = session.keys.known.get  # a C call on the hot path
        self._put = session.dispatcher.put
        self._put_stepped = session.dispatcher.put_stepped
