"""The modules served as ``azureml.core`` and its submodules (``_azml_compat_hook`` asks here
only when no real ``azureml-core`` provides them). They hold our ``Run`` and the stand-ins
(``unsupported``) under the names real scripts import; we ship no ``azureml/core/`` files, so
pip never overwrites or deletes the real package's."""
from __future__ import annotations

import importlib.abc
import importlib.machinery

from .._version import __version__
from . import run as _run
from . import unsupported

CORE = "azureml.core"


def _contents(fullname: str) -> dict | None:
    """The names a served module holds; None for a module we do not serve."""
    if fullname == CORE:
        names = {name: unsupported.stand_in(name) for name in unsupported.CORE_NAMES}
        return {**names, "Run": _run.Run, "VERSION": f"azml-compat {__version__}",
                "__version__": f"azml-compat {__version__}"}
    sub = fullname[len(CORE) + 1:]
    if sub == "run":
        return {"Run": _run.Run, "_OfflineRun": _run._OfflineRun}
    if sub in unsupported.SUBMODULES:
        return {name: unsupported.stand_in(name) for name in unsupported.SUBMODULES[sub]}
    return None


class _Loader(importlib.abc.Loader):
    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        module.__dict__.update(_contents(module.__name__))
        module.__azml_compat__ = True  # how a test (or a user) tells ours from the real one


_LOADER = _Loader()


def find_spec(fullname: str):
    if _contents(fullname) is None:
        return None
    spec = importlib.machinery.ModuleSpec(fullname, _LOADER, origin="azml-compat",
                                          is_package=fullname == CORE)
    if fullname == CORE:
        spec.submodule_search_locations = []  # submodules come through the hook too
    return spec
