"""Workbench's ``azureml.logging`` import path, served by azml_compat.

Importing it is the first thing a legacy script does, so it also gives the script what
Workbench had ready before the script started: ``./outputs`` and, unless set,
``AZUREML_NATIVE_SHARE_DIRECTORY`` (see azml_compat/_core/environment.py).
"""
from azml_compat._core import environment as _workbench_env
from azml_compat import get_azureml_logger

_workbench_env.prepare_process()

__all__ = ["get_azureml_logger"]
