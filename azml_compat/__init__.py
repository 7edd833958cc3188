"""azml-compat: Azure ML Workbench's logging API and run-history CLI on MLflow.

    from azureml.logging import get_azureml_logger   # or: from azml_compat import ...
    logger = get_azureml_logger()
    logger.log("accuracy", 0.91)           # a metric point; again -> the next step
    logger.log("loss", [0.9, 0.5, 0.3])    # a stepped metric (a chart)
    logger.log("note", "text").wait()      # a tag; wait() blocks until it is stored
    logger.upload("report.txt", "...")     # an artifact
"""
from ._dispatcher import Handle
from ._logger import AzureMLLogger
from ._process import get_azureml_logger

from ._version import __version__
__all__ = ["AzureMLLogger", "Handle", "get_azureml_logger", "__version__"]
