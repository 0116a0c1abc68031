"""The package's shape, read from its source: who may import whom, and no patching of RecBole.

Layers, lowest first (README "Layout"): base (errors, files, roots, compat, schema,
metrics, text tables, process settings, presets, the yaml) -> data -> graphs -> models ->
training (config, registry, training/) -> tables -> command line (cli/ and the ``-m``
entry modules). A module imports modules of its own layer or below, never above: so no
part of the library imports the command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "recbole_mdsrec"
LAYERS = ("base", "data", "graphs", "models", "training", "tables", "command line")
BY_PREFIX = {
    "data": "data", "graphs": "graphs", "models": "models", "training": "training", "config": "training",
    "registry": "training", "tables": "tables", "cli": "command line",
}


def layer_of(module: str) -> int:
    """``recbole_mdsrec.a.b`` -> its layer's rank."""
    parts = module.split(".")
    return LAYERS.index(BY_PREFIX.get(parts[1], "base")) if len(parts) > 1 else 0


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["recbole_mdsrec", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = ast.parse(path.read_text(), str(path))
    return found


def imports(tree: ast.Module, module: str) -> set[str]:
    """Every plugin module ``tree`` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative
                base = ".".join(module.split(".")[: -node.level] + ([node.module] if node.module else []))
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in names if name.startswith("recbole_mdsrec") and _is_module(name)}


def _is_module(name: str) -> bool:
    path = PACKAGE.parent / Path(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file() or name == "recbole_mdsrec.properties"


def test_every_module_has_a_layer_and_imports_none_above_it():
    found = modules()
    assert "recbole_mdsrec.cli.run" in found and "recbole_mdsrec.tables.grid" in found
    upward = [f"{module} ({LAYERS[layer_of(module)]}) imports {name} ({LAYERS[layer_of(name)]})"
              for module, tree in found.items() for name in imports(tree, module) if layer_of(name) > layer_of(module)]
    assert upward == []


def test_the_library_never_imports_the_command_line():
    library = {m: t for m, t in modules().items() if layer_of(m) < LAYERS.index("command line")}
    assert not [m for m, tree in library.items() if any(n.startswith("recbole_mdsrec.cli") for n in imports(tree, m))]


def recbole_names(tree: ast.Module) -> set[str]:
    """Names a module binds to RecBole modules or objects (``import recbole...``, ``from recbole... import X``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] == "recbole"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "recbole":
            names |= {a.asname or a.name for a in node.names}
    return names


def _root(node) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


@pytest.mark.parametrize("module", sorted(modules()))
def test_nothing_assigns_to_an_attribute_of_recbole(module):
    tree = modules()[module]
    bound = recbole_names(tree)
    offences = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        offences += [ast.unparse(t) for t in targets if isinstance(t, ast.Attribute) and _root(t) in bound]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
            if node.args and _root(node.args[0]) in bound:
                offences.append(ast.unparse(node))
    assert offences == []


def test_no_import_is_kept_for_its_side_effect():
    assert [str(p) for p in PACKAGE.rglob("*.py") if "noqa: F401" in p.read_text()] == []
