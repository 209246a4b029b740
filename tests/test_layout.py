"""The package's shape: dependencies one way (no import circle between its modules, imports
inside functions included) and no module past ~400 lines."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "platform"
MODULES = {".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): f
           for f in ROOT.rglob("*.py")}


def _owner(name: str) -> str | None:
    while name not in MODULES:
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]
    return name


def import_graph() -> dict[str, set[str]]:
    graph = {module: set() for module in MODULES}
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("swinls"):
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if alias.name.startswith("swinls")]
            else:
                continue
            for name in names:
                target = _owner(name)
                # a module importing its own package's __init__ (its re-exports) is not a circle
                if target and target != module and not module.startswith(f"{target}."):
                    graph[module].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
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
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_between_the_packages_modules():
    graph = import_graph()
    assert graph["swinls.published"] and "swinls.prediction.model" not in graph["swinls.published"]
    assert circles(graph) == []
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check can fail


def test_no_module_is_past_about_400_lines():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 420}
    assert long == {}


def test_the_processes_that_only_drive_training_do_not_import_the_networks():
    """A trial, Train's controller and every job's argument check import these; timm (with
    torchvision and dynamo) would add a second and more to each such process."""
    import subprocess
    import sys

    code = ("import sys, swinls.training.runner, swinls.search.experiment, swinls.experiment_config, swinls.models; "
            "print(sorted(m for m in ('timm', 'torchvision', 'swinls.training.loop') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
