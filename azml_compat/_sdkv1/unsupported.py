"""The parts of ``azureml.core`` a training script may import but that have no MLflow meaning
here (workspaces, submission, datastores, datasets, the model registry, secrets).

Importing them works (many scripts import ``Workspace, Experiment, Dataset`` and never use
them); using one raises ``NotCovered`` naming the call, at the call: never an
``AttributeError`` deep inside. ``hasattr`` on them stays true, as it was with the real package.
"""
from __future__ import annotations

from .._exceptions import AzmlError

GUIDE = "docs/migration-sdkv1.md"


class NotCovered(AzmlError, NotImplementedError):
    """An SDK v1 call azml-compat does not provide."""

    def __init__(self, call: str) -> None:
        super().__init__(
            f"azureml.core: {call} is not covered by azml-compat (it runs SDK v1 training scripts "
            f"on MLflow; workspaces, submission, datasets, datastores, models and secrets are not "
            f"part of that). See {GUIDE} for what is covered and what to use instead.")
        self.call = call


class NotCoveredAttribute(NotCovered, AttributeError):
    """An attribute of SDK v1's ``Run`` we do not provide: ``hasattr`` is False for it (and a
    library probing with ``getattr(obj, name, default)`` gets its default), while a script
    using it gets the same one clear line as any other ``NotCovered``."""


class _Call:
    """An attribute of a stand-in: a further attribute or a call names the whole path."""

    def __init__(self, path: str) -> None:
        self._path = path

    def __getattr__(self, name: str) -> "_Call":
        if name.startswith("__"):
            raise AttributeError(name)
        return _Call(f"{self._path}.{name}")

    def __call__(self, *args, **kwargs):
        raise NotCovered(f"{self._path}()")

    def __repr__(self) -> str:
        return f"<azml-compat stand-in for azureml.core {self._path} (not covered)>"


class _StandInType(type):
    def __getattr__(cls, name: str) -> _Call:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Call(f"{cls.__name__}.{name}")


class StandIn(metaclass=_StandInType):
    """Base of the stand-ins: making one, or calling anything on it, raises ``NotCovered``."""

    def __init__(self, *args, **kwargs) -> None:
        raise NotCovered(f"{type(self).__name__}()")


def stand_in(name: str) -> type:
    """A stand-in class called ``name`` (as the script imports it)."""
    return _StandInType(name, (StandIn,), {"__module__": "azureml.core", "__qualname__": name})


# What scripts import from ``azureml.core`` besides ``Run`` (MachineLearningNotebooks' training
# scripts and the SDK v1 docs' samples).
CORE_NAMES = ("Workspace", "Experiment", "Dataset", "Datastore", "Environment",
              "ScriptRunConfig", "Model", "ComputeTarget", "RunConfiguration", "Keyvault",
              "ScriptRun", "Webservice", "Image", "LinkedService", "PrivateEndPointConfig")
# Submodules real scripts import, with the names imported from each.
SUBMODULES = {
    "model": ("Model", "InferenceConfig", "Dataset"),  # scripts import Dataset from here too
    "workspace": ("Workspace",),
    "experiment": ("Experiment",),
    "dataset": ("Dataset",),
    "datastore": ("Datastore",),
    "environment": ("Environment",),
    "conda_dependencies": ("CondaDependencies",),
    "runconfig": ("RunConfiguration", "DockerConfiguration", "MpiConfiguration"),
    "compute": ("ComputeTarget", "AmlCompute", "ComputeInstance"),
    "compute_target": ("ComputeTarget",),
    "script_run_config": ("ScriptRunConfig",),
    "authentication": ("InteractiveLoginAuthentication", "ServicePrincipalAuthentication",
                       "MsiAuthentication", "AzureCliAuthentication"),
    "webservice": ("Webservice", "AciWebservice", "LocalWebservice"),
    "resource_configuration": ("ResourceConfiguration",),
}
