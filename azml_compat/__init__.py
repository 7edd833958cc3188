"""azml-compat: Azure ML Workbench's logging API and run-history CLI on MLflow.

    from azureml.logging import get_azureml_logger   # or: from azml_compat import ...
    logger = get_azureml_logger()
    logger.log("accuracy", 0.91)           # a metric point; again -> the next step
    logger.log("loss", [0.9, 0.5, 0.3])    # a stepped metric (a chart)
    logger.log("note", "text").wait()      # a tag; wait() blocks until it is stored
    logger.upload("report.txt", "...")     # an artifact

``wait()`` raises ``RecordRejected`` for a record the store refused (the store's error is its
``__cause__``) and ``DeliveryTimeout`` when the store stalls; both are ``AzmlError``s.
"""
from . import _report  # noqa: F401 - the `azml` logger's one stderr handler, before any line
from ._core.dispatcher import Handle
from ._exceptions import AzmlError, DeliveryTimeout, RecordRejected
from ._workbench.logger import AzureMLLogger, get_azureml_logger

from ._version import __version__
__all__ = ["__version__", "AzmlError", "AzureMLLogger", "DeliveryTimeout", "get_azureml_logger",
           "Handle", "RecordRejected"]

# Shown as azml_compat.RecordRejected (in tracebacks, reprs, docs), where users import it from.
for _name in __all__:
    if not _name.startswith("__"):
        globals()[_name].__module__ = "azml_compat"
del _name
