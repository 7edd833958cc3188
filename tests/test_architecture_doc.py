"""docs/architecture.md's module table is the package's tree: every module is described there,
and everything described exists; and the tree's three layers hold (faces over one core)."""
import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "azml_compat"
FACES = ("_workbench", "_sdkv1")
AZML_SIDE = ("_azml", "cli")


def _table() -> str:
    text = (REPO / "docs" / "architecture.md").read_text()
    return text[text.index("| module | concern |"):text.index("## Decisions")]


def _modules() -> list[str]:
    """Every module of the package but the ``__init__``s, as paths under ``azml_compat/``."""
    return sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                  if p.name != "__init__.py" and "__pycache__" not in p.parts)


def test_every_module_is_in_the_table_and_every_row_is_a_module():
    table = _table()
    rows = re.findall(r"^\| `([^`]+)` \|", table, re.M)
    assert len(rows) == len(set(rows)), "a row is there twice"
    for row in rows:
        assert (PACKAGE / row).exists(), f"the table describes {row}, which is not in the tree"
    for module in _modules():
        if module in rows:
            continue
        # else its folder's row names it (a family of small modules in one row: cli/, _sdkv1/)
        folder = module.rsplit("/", 1)[0] + "/" if "/" in module else None
        assert folder in rows, f"{module} is not in docs/architecture.md's table"
        line = next(line for line in table.splitlines() if line.startswith(f"| `{folder}`"))
        name = module.rsplit("/", 1)[1]
        assert f"`{name[:-3]}`" in line or f"`{name}`" in line, (folder, name)


def _imports(path: Path) -> set[str]:
    """The azml_compat modules ``path`` imports, as dotted names (relative ones resolved)."""
    package = ["azml_compat", *path.relative_to(PACKAGE).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("azml_compat")}


def _layer(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in (*FACES, "_core", *AZML_SIDE) else None


def test_the_core_imports_no_face_and_a_face_no_other_face():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        mine = _layer(".".join(["azml_compat", *path.relative_to(PACKAGE).parts]))
        for target in _imports(path):
            theirs = _layer(target)
            if theirs is None or theirs == mine:
                continue
            if mine == "_core" and theirs in (*FACES, *AZML_SIDE):
                wrong.append(f"{path.relative_to(PACKAGE)} (core) imports {target}")
            if mine in FACES and theirs in (*FACES, *AZML_SIDE):
                wrong.append(f"{path.relative_to(PACKAGE)} (a face) imports {target}")
    assert not wrong, wrong
    assert _imports(PACKAGE / "_core" / "process.py"), "the scan found no import: it is broken"
