"""Only what pyproject.toml cannot say: ship ``azml_compat.pth`` at the top of site-packages.

The .pth installs the ``azureml.core`` hook (``_azml_compat_hook``) at interpreter start, so
``from azureml.core import Run`` works with only azml-compat installed, whichever package's
``azureml/__init__.py`` pip kept (azureml-mlflow's, azureml-core's and ours are all written
to the same path). Editable installs skip it; our ``azureml/__init__.py`` installs the hook there.
"""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "azml_compat.pth"


class build_py_with_pth(build_py):
    def run(self):
        super().run()
        self.copy_file(PTH, os.path.join(self.build_lib, PTH))

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, PTH)]


setup(cmdclass={"build_py": build_py_with_pth})
