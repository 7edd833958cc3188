"""``python -m azml_compat.cli``: the ``azml`` command without its console script."""
from azml_compat.cli import main

main(prog_name="azml")
