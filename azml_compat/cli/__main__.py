"""``python -m azml_compat.cli``: the ``azml`` command without its console script."""
from . import main

main(prog_name="azml")
