"""The package's public names: exactly ``__all__``, each importable and shown as
``azml_compat.<name>`` (as users import it), never as the private module it lives in."""
import types

import azml_compat


def test_all_public_names_are_exported():
    # Submodules are attributes of the package once imported (``azml_compat.cli`` by the
    # command line): they are reached by import, not listed in ``__all__``.
    public = [name for name, value in vars(azml_compat).items()
              if (not name.startswith("_") or name == "__version__")
              and not isinstance(value, types.ModuleType)]
    assert azml_compat.__all__ == sorted(public, key=str.casefold)


def test_exported_members_are_importable_and_belong_to_the_package():
    for name in azml_compat.__all__:
        namespace = {}
        exec(f"from azml_compat import {name}", namespace)  # importable by name
        if name != "__version__":
            assert namespace[name].__module__ == "azml_compat", name


def test_the_errors_users_catch_are_exported():
    assert {"AzmlError", "RecordRejected", "DeliveryTimeout"} <= set(azml_compat.__all__)
    assert issubclass(azml_compat.RecordRejected, azml_compat.AzmlError)
    assert issubclass(azml_compat.DeliveryTimeout, azml_compat.AzmlError)
    assert issubclass(azml_compat.DeliveryTimeout, TimeoutError)  # older scripts catch that
