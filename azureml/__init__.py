__path__ = __import__('pkgutil').extend_path(__path__, __name__)
# azml-compat: serve azureml.core (SDK v1) when no real azureml-core is installed; the same
# hook azml_compat.pth installs at start-up (this line is for editable installs, which skip it).
try:
    __import__("_azml_compat_hook").install()
except ImportError:
    pass
