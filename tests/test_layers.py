"""Layers import downward only (cli -> benchmarks -> apps -> solve -> ... -> core: the table below mirrors
the design map, DESIGN.md) and no two modules import each other; imports inside functions count too."""
from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: source folder of each package (setup.py installs operators/ and configs/ as scoremed.operators / .configs)
PACKAGES = {"scoremed": REPO_ROOT / "scoremed", "scoremed.operators": REPO_ROOT / "operators",
            "scoremed.configs": REPO_ROOT / "configs"}
#: lowest first; a module may import modules of its own layer and of the layers below
LAYERS = [
    ("core", ["scoremed.errors", "scoremed.utils", "scoremed.configs", "scoremed.sde", "scoremed.prior",
              "scoremed.analytic", "scoremed.denoising", "scoremed.distributed", "scoremed.calibration"]),
    ("sampling / operators / networks / io", ["scoremed.sampling", "scoremed.operators", "scoremed.networks",
                                             "scoremed.io"]),
    ("tasks", ["scoremed.tasks"]),
    ("priors", ["scoremed.priors"]),
    ("training", ["scoremed.training"]),
    ("data", ["scoremed.data"]),
    ("solve", ["scoremed.solve", "scoremed.settings", "scoremed.likelihood"]),
    ("public API", ["scoremed"]),
    ("apps", ["scoremed.apps"]),
    ("benchmarks", ["scoremed.benchmarks"]),
    ("cli", ["scoremed.cli", "scoremed.__main__"]),
]


def modules() -> dict[str, Path]:
    """Every module of the installed package by dotted name (a package by its own name)."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join((package, *parts))] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> dict[str, int]:
    """{imported scoremed module: first line} of module ``name``, module level and inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: dict[str, int] = {}

    def add(dotted: str, line: int) -> None:
        while dotted and dotted not in known:      # an imported name: the module defining it
            dotted = dotted.rpartition(".")[0]
        if dotted and dotted != name:
            targets.setdefault(dotted, line)

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                add(f"{base}.{alias.name}", node.lineno)
    return {target: line for target, line in targets.items() if target.split(".")[0] == "scoremed"}


def layer_of(name: str, layers) -> int | None:
    """Index of the layer of module ``name`` (its longest listed prefix), None if unlisted."""
    matches = [(len(prefix), i) for i, (_, prefixes) in enumerate(layers) for prefix in prefixes
               if name == prefix or (prefix != "scoremed" and name.startswith(prefix + "."))]
    return max(matches)[1] if matches else None


def graph() -> dict[str, dict[str, int]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def upward_imports(edges: dict[str, dict[str, int]], layers) -> list[str]:
    found = []
    for name, targets in sorted(edges.items()):
        for target, line in targets.items():
            low, high = layer_of(name, layers), layer_of(target, layers)
            if low is not None and high is not None and high > low:
                found.append(f"{name}:{line} ({layers[low][0]}) imports {target} ({layers[high][0]})")
    return found


def two_module_cycles(edges: dict[str, dict[str, int]]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in edges.items() for b in targets if a < b and a in edges.get(b, {})}


def test_every_module_has_a_layer():
    assert [name for name in modules() if layer_of(name, LAYERS) is None] == []


def test_no_module_imports_a_higher_layer():
    assert upward_imports(graph(), LAYERS) == []


def test_no_two_modules_import_each_other():
    assert two_module_cycles(graph()) == set()


def test_the_checks_see_a_wrong_table_and_a_cycle():
    edges = graph()
    assert any("scoremed.cli" in v for v in upward_imports(edges, LAYERS[::-1]))
    assert two_module_cycles({"a": {"b": 1}, "b": {"a": 3}, "c": {"a": 2}}) == {("a", "b")}
