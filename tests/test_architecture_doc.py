"""docs/architecture.md's module table is the package's tree: every module is described there,
and everything described exists."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "azml_compat"


def _table() -> str:
    text = (REPO / "docs" / "architecture.md").read_text()
    return text[text.index("| module | concern |"):text.index("## Decisions")]


def test_every_module_is_in_the_table_and_every_row_is_a_module():
    table = _table()
    rows = re.findall(r"^\| `([^`]+)` \|", table, re.M)
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    packages = sorted(p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert sorted(rows) == sorted(top + packages)
    for package in packages:  # a subpackage's row names each of its modules
        row = next(line for line in table.splitlines() if line.startswith(f"| `{package}`"))
        for module in (PACKAGE / package).glob("*.py"):
            if module.name != "__init__.py":
                assert f"`{module.stem}`" in row or f"`{module.name}`" in row, (package, module.name)
