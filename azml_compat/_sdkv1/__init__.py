"""SDK v1's face (``azureml.core.Run``) on the same session as the Workbench logger.

``run`` is the ``Run`` class; ``unsupported`` the stand-ins for the rest of ``azureml.core``
that real scripts import; ``core`` the modules served as ``azureml.core`` and its
submodules by ``finder`` when no real ``azureml-core`` is importable.
"""
