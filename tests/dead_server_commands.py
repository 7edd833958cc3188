"""Every `azml` command that talks to a tracking server, with arguments that reach it: what
``tests/test_rest_client.py`` and ``python -m bench.dead_server`` run against a closed port and
a hung server (one table, so the benchmark measures exactly what the tests check)."""
from __future__ import annotations

import json
from pathlib import Path

RUN = "0" * 32
COMMANDS = {  # "{folder}": the command's own working folder
    "history list": ["history", "list"],
    "history last": ["history", "last"],
    "history info": ["history", "info", "-r", RUN],
    "history info -a": ["history", "info", "-r", RUN, "-a", "driver_log"],
    "history download": ["history", "download", "-r", RUN, "-d", "{folder}/dl"],
    "history compare": ["history", "compare", "-r", RUN, "-r", "1" * 32],
    "history promote": ["history", "promote", "-r", RUN, "-ap", "outputs", "-n", "m"],
    "asset download": ["asset", "download", "-l", "{folder}/model.link", "-d", "{folder}/asset"],
    "submit": ["submit", "{folder}/train.py"],
    "sync": ["sync"],  # the caller leaves a journal first
}


def command(name: str, folder) -> list[str]:
    """The arguments of ``name``, with the script and link file it needs written in ``folder``."""
    folder = Path(folder)
    (folder / "train.py").write_text("print('ran')\n")
    (folder / "model.link").write_text(json.dumps({"name": "m", "version": "1"}))
    return [arg.format(folder=folder) for arg in COMMANDS[name]]
