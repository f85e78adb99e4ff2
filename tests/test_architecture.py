"""The package's layers: a module imports only from its own layer or lower ones, and no import cycle exists.

Every import is counted, including those inside functions (a function-local import that
reaches up a layer is still a dependency), so the check cannot be dodged by deferring one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import attackprev

PACKAGE = Path(attackprev.__file__).resolve().parent

#: Lowest first. A module may import from its own layer and the layers below it.
LAYERS: dict[str, int] = {
    "attackprev": 0,  # the package's __init__
    "attackprev.config": 0,
    "attackprev.errors": 0,
    "attackprev.atomic": 0,
    "attackprev.evidence": 1,
    "attackprev.model": 1,
    "attackprev.simulation": 1,  # attack graphs and the reachability engine (mal-simulator semantics)
    "attackprev.mal": 1,  # the MAL language: expressions, .mal files, step mapping, export of written results
    "attackprev.inference": 2,
    "attackprev.analysis": 3,
    "attackprev.reporting": 4,
    "attackprev.pipeline": 5,
    "attackprev.validation": 5,
    "attackprev.cli": 6,
}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = ["attackprev", *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    """The layer of a module: that of the longest key of :data:`LAYERS` that prefixes it."""
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len, default=None)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_architecture.py")
    return LAYERS[best]


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """The project modules ``module`` (at ``path``) imports, anywhere in its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # `from attackprev.x import func` -> attackprev.x
                name = name.rpartition(".")[0]
            if name and name.startswith("attackprev") and name != module:
                found.add(name)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    paths = {module_name(p, root): p for p in root.rglob("*.py")}
    known = set(paths)
    graph = {}
    for mod, path in paths.items():
        deps = imports_of(path, mod, known)
        # importing a submodule also runs its packages' __init__ files; those are not dependencies of note
        graph[mod] = {d for d in deps if not mod.startswith(d + ".")}
    return graph


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{mod} (layer {layer_of(mod)}) imports {dep} (layer {layer_of(dep)})"
        for mod, deps in graph.items()
        for dep in deps
        if layer_of(dep) > layer_of(mod)
    )


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_module_is_in_a_layer():
    for mod in import_graph():
        layer_of(mod)


def test_no_module_imports_a_higher_layer():
    assert layer_violations(import_graph()) == []


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_the_checks_catch_a_deliberate_cycle_and_an_upward_import(tmp_path):
    """A copy of the package with one module edited to import upwards, closing a cycle, fails both checks."""
    import shutil

    copy = tmp_path / "attackprev"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    likelihood = copy / "model" / "likelihood.py"
    likelihood.write_text(
        likelihood.read_text() + "\n\ndef _late():\n    from attackprev.analysis.technique import analyse_technique\n"
    )
    graph = import_graph(copy)
    assert layer_violations(graph) == [
        "attackprev.model.likelihood (layer 1) imports attackprev.analysis.technique (layer 3)"
    ]
    cycle = find_cycle(graph)
    assert cycle is not None and "attackprev.model.likelihood" in cycle and "attackprev.analysis.technique" in cycle


def test_no_top_level_models_package_is_installed():
    import importlib.util

    spec = importlib.util.find_spec("models")
    assert spec is None or "site-packages" not in str(spec.origin or ""), spec


@pytest.mark.parametrize("constant", ["DATA_DIR", "HDI_PROB", "DIAGNOSTIC_LIMITS", "CATALOGUE_DIR", "DEFAULT_MODEL"])
def test_constants_are_defined_once(constant):
    """Paths, the interval probability and the diagnostic limits live in attackprev.config only."""
    defined = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            if any(isinstance(t, ast.Name) and t.id == constant for t in targets):
                defined.append(module_name(path))
    assert defined == ["attackprev.config"]
