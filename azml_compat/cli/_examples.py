"""The "Examples" section that ends each command's help, in az's style (a line saying what,
then the command line, indented). Keyed by the command's full path."""
from __future__ import annotations


def _section(*pairs: tuple[str, str]) -> str:
    # "\b" keeps Click from re-wrapping the lines of the paragraph it starts.
    paragraphs = ["\b\nExamples"]
    paragraphs += [f"\b\n    {what}\n        {command}" for what, command in pairs]
    return "\n\n".join(paragraphs)


EXAMPLES = {
    "azml": _section(
        ("Runs of this folder's experiment, newest first.", "azml history list"),
        ("Workbench command lines run verbatim with the alias.",
         "alias az=azml; az ml history list -o table"),
    ),
    "azml history list": _section(
        ("Runs of this folder's experiment as a table.", "azml history list -o table"),
        ("The best accuracy of the newest 100 runs.",
         "azml history list --query \"@[?Accuracy != null] | max_by(@, &Accuracy).Accuracy\""),
        ("Every run of experiment iris, as JSON for jq.",
         "azml history list -e iris --max 0 -o json | jq '.[].run_id'"),
    ),
    "azml history last": _section(
        ("The newest run with its series as sparklines.", "azml history last -o table"),
        ("Its status only.", "azml history last --query status -o tsv"),
    ),
    "azml history info": _section(
        ("One run, by any unique prefix of its id.", "azml history info -r 5f0c"),
        ("What the script printed (Workbench's driver_log).",
         "azml history info -r 5f0c -a driver_log"),
    ),
    "azml history download": _section(
        ("A run's outputs folder into ./got.", "azml history download -r 5f0c -a outputs -d ./got"),
        ("Everything the run stored, replacing files there.",
         "azml history download -r 5f0c -d ./run --overwrite"),
    ),
    "azml history compare": _section(
        ("Two runs side by side.", "azml history compare -r 5f0c -r 91ab"),
    ),
    "azml history promote": _section(
        ("Register a run's model file and write assets/model.pkl.link.",
         "azml history promote -r 5f0c -ap outputs/model.pkl -n model.pkl"),
    ),
    "azml asset download": _section(
        ("The promoted model into ./deploy.", "azml asset download -l assets/model.pkl.link -d ./deploy"),
        ("Version 2 of a registered model by name.",
         "azml asset download -n model.pkl -v 2 -d ./deploy"),
    ),
    "azml submit": _section(
        ("Run a script as a new run; the exit code is the script's.", "azml submit train.py 0.01"),
        ("Then print the finished run.", "azml submit -o table train.py 0.01"),
    ),
    "azml ml experiment submit": _section(
        ("Workbench's form of `azml submit`.", "azml ml experiment submit -c local train.py 0.01"),
    ),
    "azml sync": _section(
        ("Deliver what journals kept while the server was down.", "azml sync"),
        ("See every journal without delivering.", "azml sync --list"),
        ("Drop a journal whose records are not wanted, without asking.",
         "azml sync --discard 5f0c --yes"),
        ("Send the records of a run deleted on the server to a new run.",
         "azml sync --to-new-run 5f0c"),
    ),
}
