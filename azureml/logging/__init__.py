"""Workbench's ``azureml.logging`` import path, served by azml_compat."""
from azml_compat import get_azureml_logger

__all__ = ["get_azureml_logger"]
