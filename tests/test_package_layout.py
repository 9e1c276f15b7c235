"""The house plan holds: every module lives in a folder that names its stage or task, no module imports
another that (directly or through others) imports it back, and the foundations (``config/``: what a config
may be; ``record/``: the run record's contract) import nothing above them. Imports inside functions count
too: a lazy import is still a dependency."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "visionlab"

# folder → the folders (besides itself) it may import
FOUNDATIONS = {"config": set(), "record": {"config"}}
# cli/ holds the entry points: nothing imports them but another entry point, a ``python -m`` shim, or what
# composes a config like an entry point does (the benchmark registers the ${vl.*} resolvers)
CLI_USERS = {
    "visionlab.report.__main__": {"visionlab.cli.report"},
    "visionlab.benchmark.pipeline": {"visionlab.cli.resolvers"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for file in PACKAGE.rglob("*.py"):
        parts = file.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module → the visionlab modules it imports (``from package import module`` names the module)."""

    def known(name: str) -> str:
        while name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, file in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("visionlab"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else known(node.module))
            elif isinstance(node, ast.Import):
                targets |= {known(a.name) for a in node.names if a.name.startswith("visionlab")}
        graph[name] = targets - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_package_root_holds_no_module_of_its_own():
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py"]
    stages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert {"cli", "config", "run", "record", "tasks", "data", "report"} <= stages


def test_no_module_imports_itself_back():
    graph = _imports(_modules())
    assert len(graph) > 100 and graph["visionlab.run.execute"]  # the graph was really read
    assert _cycles(graph) == []


def test_the_detector_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_config_and_record_import_nothing_above_them():
    upward = [
        f"{module} imports {target}"
        for module, targets in _imports(_modules()).items()
        for folder, allowed in FOUNDATIONS.items()
        if module.startswith(f"visionlab.{folder}.")
        for target in targets
        if target.split(".")[1] not in allowed | {folder}
    ]
    assert upward == []


def test_only_entry_points_import_the_entry_points():
    found = {
        (module, target)
        for module, targets in _imports(_modules()).items()
        if not module.startswith("visionlab.cli.")
        for target in targets
        if target.startswith("visionlab.cli.") and target not in CLI_USERS.get(module, set())
    }
    assert found == set()
