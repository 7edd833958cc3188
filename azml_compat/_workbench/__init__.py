"""The Workbench face: ``get_azureml_logger()`` and its logger."""
