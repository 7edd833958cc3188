"""Serves ``azureml.core`` (SDK v1) from azml-compat when no real ``azureml-core`` is importable.

Run at interpreter start by ``azml_compat.pth`` (and by ``import azureml`` when our
``azureml/__init__.py`` is the installed one), so it costs every Python process of the
environment: it imports nothing and appends one finder to ``sys.meta_path``, after the normal
ones, so a real ``azureml.core`` is always found first. azml-compat itself is imported only when
a script imports ``azureml.core`` and nothing else provides it.
"""
import sys


class AzmlCompatCoreFinder:
    """Asked only after every other finder has failed for a name."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != "azureml.core" and not fullname.startswith("azureml.core."):
            return None
        from azml_compat._sdkv1 import finder

        return finder.find_spec(fullname)


def install():
    if not any(getattr(f, "__name__", None) == AzmlCompatCoreFinder.__name__ for f in sys.meta_path):
        sys.meta_path.append(AzmlCompatCoreFinder)
