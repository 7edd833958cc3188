"""The docs are checked against what they describe: docs/cli.md against every command's
``--help``, every shell example of the quick start and the CLI reference run as written, and
every link of README.md and docs/ leads to a file (and heading) that exists.

Examples: a ```bash block is run; a ```text block is illustrative (it needs a server, a journal
or a person at a terminal) and is not."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from azml_compat.cli import main
from conftest import clean_env

REPO = Path(__file__).resolve().parent.parent
CLI_DOC = REPO / "docs" / "cli.md"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


# -- the CLI reference against --help ------------------------------------------------------------
def _commands():
    """(path, command) of every command `azml` has, each command object once: `azml ml history
    ...` is `azml history ...` again, named by the shorter path (`ml` is walked last)."""
    seen = set()

    def walk(command, path):
        if id(command) in seen:
            return
        seen.add(id(command))
        yield path, command
        subs = sorted(getattr(command, "commands", {}).items(), key=lambda i: (i[0] == "ml", i[0]))
        for name, sub in subs:
            yield from walk(sub, (*path, name))

    yield from walk(main, ("azml",))


def _help(path) -> str:
    result = CliRunner().invoke(main, [*path[1:], "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def _options(help_text: str) -> set[str]:
    section = help_text.split("Options:", 1)[1].split("Commands:", 1)[0].split("Examples", 1)[0]
    return set(re.findall(r"(?:^|[\s,])(--?[a-z][\w-]*)", section, re.M))


def _sections(text: str) -> dict[str, str]:
    """Each `### azml ...` heading's text, up to the next heading."""
    parts = re.split(r"^(#{2,3} .*)$", text, flags=re.M)
    return {head.lstrip("# ").strip(): body for head, body in zip(parts[1::2], parts[2::2])}


def _leaves():
    return [(path, cmd) for path, cmd in _commands() if not getattr(cmd, "commands", None)]


GLOBAL_SECTION = "Options every command takes"


def test_every_command_and_option_of_the_help_is_in_the_cli_reference():
    text = CLI_DOC.read_text()
    sections = _sections(text)
    everywhere = set.intersection(*(_options(_help(path)) for path, _ in _leaves()))
    assert {"--output", "--query", "--debug", "--help"} <= everywhere
    for option in everywhere | _options(_help(("azml",))):
        assert re.search(rf"`{re.escape(option)}\b", sections[GLOBAL_SECTION]), option
    missing = []
    for path, _ in _leaves():
        name = " ".join(path)
        assert name in sections, f"no '### {name}' in docs/cli.md"
        for option in _options(_help(path)) - everywhere:
            if not re.search(rf"`[^`]*{re.escape(option)}\b", sections[name]):
                missing.append(f"{name} {option}")
    assert missing == []


def test_every_command_has_an_example_in_the_cli_reference():
    sections = _sections(CLI_DOC.read_text())
    for path, _ in _leaves():
        name = " ".join(path)
        blocks = re.findall(r"```(?:bash|text)\n(.*?)```", sections[name], re.S)
        assert any(line.startswith(name + " ") or line == name
                   for block in blocks for line in block.splitlines()), name


def test_the_help_check_sees_a_missing_option():
    """The check above reads options from the real help: a made-up one is not found."""
    assert "--list" in _options(_help(("azml", "sync")))
    assert "--no-such-option" not in _options(_help(("azml", "sync")))


# -- every shell example runs ---------------------------------------------------------------------
def _blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)


def _quick_start() -> str:
    text = (REPO / "README.md").read_text()
    return text.split("## Quick start", 1)[1].split("\n## ", 1)[0]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """examples/ copied into a temporary folder, with HOME and AZML_HOME inside it and the
    embedded SQLite default; the venv's `python` and `azml` first on PATH."""
    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(REPO / "examples", root / "examples")
    home = root / "home"
    home.mkdir()
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = clean_env(HOME=str(home), AZML_HOME=str(home / ".azml"), PATH=path,
                    AZML_SHARE_DIRECTORY=str(root / "share"), COLUMNS="200")
    return root, env


def _run(block: str, cwd: Path, env: dict) -> str:
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{block}\n-> exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_the_quick_start_runs_as_written(project):
    root, env = project
    blocks = _blocks(_quick_start())
    assert blocks and "python train.py" in blocks[0]
    for block in blocks:
        _run(block, root, env)
    assert len(list((root / "examples" / "iris" / "mlruns").iterdir())) >= 1


def test_every_example_of_the_cli_reference_runs_as_written(project):
    """In the quick start's folder, after one `azml submit` (the newest run then has a
    driver_log); $RUN and $OLD as the reference defines them."""
    root, env = project
    iris = root / "examples" / "iris"
    if not (iris / "mlflow.db").exists():  # run alone: the quick start's runs first
        _run("python train.py 0.01", iris, env)
    _run("azml submit train.py 0.1 >/dev/null", iris, env)
    blocks = _blocks(CLI_DOC.read_text())
    define = next(b for b in blocks if b.startswith("RUN="))
    assert len(blocks) > len(_leaves())
    # The block that sets $RUN and $OLD runs once; the others get its values.
    run, old = _run(define + 'echo "$RUN $OLD"', iris, env).split()
    assert run != old
    for block in blocks:
        if block is not define:
            _run(block, iris, {**env, "RUN": run, "OLD": old})


def test_a_failing_example_fails_the_check(project):
    root, env = project
    with pytest.raises(AssertionError, match="exit 2"):
        _run("azml history list -o xml", root, env)


# -- links -----------------------------------------------------------------------------------------
def _anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (outside code blocks)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def _links(path: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_leads_somewhere(doc):
    broken = []
    for link in _links(doc):
        if re.match(r"^[a-z]+://", link):
            continue
        target, _, anchor = link.partition("#")
        file = (doc.parent / target).resolve() if target else doc
        if not file.exists():
            broken.append(link)
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(link)
    assert broken == []


def test_the_link_check_sees_a_broken_anchor(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text("# Where `azml` differs\n\n[ok](#where-azml-differs) [bad](#nowhere)\n")
    assert _anchors(doc) == {"where-azml-differs"}
    assert _links(doc) == ["#where-azml-differs", "#nowhere"]
