"""The package's layers: only the page imports streamlit, no import circle, every method registered under its name."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from bayesdemo.core.config import METHODS, FitConfig
from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.priors import Model
from bayesdemo.methods import REGISTRY, make_method
from bayesdemo.methods.base import Method, NoisePosterior, SettablePosterior

PACKAGE = Path(__file__).resolve().parent.parent / "bayesdemo"
# The layers from the bottom up (docs/architecture.md): a module imports only from its own layer and those below.
# The top level (cli, __main__) and app.py sit above them all.
LAYERS = ("core", "methods", "fitting", "references", "teaching", "charts", "workers", "page")


def module_name(path: Path) -> str:
    """bayesdemo/methods/base.py -> bayesdemo.methods.base; a package's __init__.py -> the package."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking(test: ast.expr) -> bool:
    """True for `if TYPE_CHECKING:` and `if typing.TYPE_CHECKING:`."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement in `module` names, absolute: `from a import b` names a.b when that is one of
    the package's modules, else a."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the module's package, one level up per extra dot
        package = module if module in MODULES and MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]


def imports(module: str, module_level_only: bool) -> set[str]:
    """Modules `module` imports: all of them, or those run at import time (functions and TYPE_CHECKING left out)."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.update(imported_names(module, node))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if not module_level_only:
                    visit(node.body)
            elif isinstance(node, ast.If) and is_type_checking(node.test):
                if not module_level_only:
                    visit(node.body)
                visit(node.orelse)
            else:  # class bodies, if / try / with / for / match blocks run at import time
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        visit([child])
                    elif isinstance(child, ast.excepthandler | ast.match_case):
                        visit(child.body)

    visit(ast.parse(MODULES[module].read_text(), filename=str(MODULES[module])).body)
    return found


def internal_edges(module: str) -> set[str]:
    """The package's modules that importing `module` runs first: each one it imports, and each one's enclosing
    packages (their __init__ runs first) that do not already enclose `module`."""
    edges = set()
    for name in imports(module, module_level_only=True):
        while name in MODULES or name.startswith("bayesdemo."):
            if name in MODULES and name != module and not module.startswith(name + "."):
                edges.add(name)
            name = name.rpartition(".")[0]
            if not name:
                break
    return edges


def test_the_walk_sees_every_module_and_reads_imports_the_way_python_runs_them():
    assert {"bayesdemo", "bayesdemo.workers.jobs", "bayesdemo.methods", "bayesdemo.methods.base"} <= set(MODULES)
    # make_method's imports of the method classes are inside functions: not run when the package is imported.
    assert "bayesdemo.methods.bbb" in imports("bayesdemo.methods", module_level_only=False)
    assert "bayesdemo.methods.bbb" not in internal_edges("bayesdemo.methods")
    # An import of bayesdemo.core.config from another layer runs bayesdemo.core (its __init__) first.
    assert {"bayesdemo.core", "bayesdemo.core.config"} <= internal_edges("bayesdemo.fitting.metrics")


def layer_of(module: str) -> str | None:
    """The layer a module belongs to (bayesdemo.core.exact -> core); None for the top level (cli, __main__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_lives_in_a_layer_or_is_the_command_line():
    loose = {module for module in MODULES if layer_of(module) is None}
    assert loose == {"bayesdemo", "bayesdemo.cli", "bayesdemo.__main__"}, sorted(loose)


def test_only_the_page_imports_streamlit():
    importers = {
        module
        for module in MODULES
        if any(name.split(".")[0] == "streamlit" for name in imports(module, module_level_only=False))
    }
    assert importers, "the walk found no streamlit import at all"
    outside = sorted(module for module in importers if layer_of(module) != "page")
    assert not outside, f"streamlit imported outside bayesdemo.page: {outside}"


def test_the_problems_layer_loads_without_torch_pyro_or_plotly():
    heavy = {"torch", "pyro", "plotly", "streamlit"}
    offenders = {
        module: sorted(name for name in imports(module, module_level_only=True) if name.split(".")[0] in heavy)
        for module in MODULES
        if layer_of(module) == "core"
    }
    assert {module: names for module, names in offenders.items() if names} == {}


def test_each_layer_imports_only_itself_and_the_layers_below():
    upward = []
    for module in MODULES:
        layer = layer_of(module)
        if layer is None:
            continue
        for name in imports(module, module_level_only=False):
            target = layer_of(name) if name.startswith("bayesdemo.") else None
            if target is not None and LAYERS.index(target) > LAYERS.index(layer):
                upward.append(f"{module} -> {name}")
            if name in {"bayesdemo.cli", "bayesdemo.__main__"}:
                upward.append(f"{module} -> {name}")
    assert not upward, upward


def test_no_import_cycle_among_the_packages_modules():
    graph = {module: internal_edges(module) for module in MODULES}
    visiting: list[str] = []
    done: set[str] = set()

    def walk(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, "import cycle: " + " -> ".join([*visiting[visiting.index(module) :], module])
        visiting.append(module)
        for imported in sorted(graph[module]):
            walk(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        walk(module)


@pytest.mark.parametrize("module", sorted(name for name in MODULES if name.startswith("bayesdemo.methods")))
def test_each_method_module_imports_first_in_a_fresh_interpreter(module):
    # Generous bound: importing torch and Pyro takes a few seconds on a busy machine.
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_method_is_registered_and_declares_the_capabilities_it_has():
    assert set(REGISTRY) == set(METHODS)
    dataset = generate(DataConfig(n=20, seed=1))
    built: dict[str, Method] = {name: make_method(dataset, Model(), FitConfig(method=name)) for name in METHODS}
    for name, method in built.items():
        assert method.config.method == name
        assert isinstance(method.step(), float) and method.posterior().mean.shape == (2,)
    # Bayes by Backprop can be placed at a q; Bayes by Backprop and Pyro SVI report q(s); noise injection neither.
    assert {name for name, method in built.items() if isinstance(method, SettablePosterior)} == {"bbb"}
    assert {name for name, method in built.items() if isinstance(method, NoisePosterior)} == {"bbb", "svi"}


def test_test_modules_share_helpers_through_tests_support_only():
    tests_folder = Path(__file__).resolve().parent
    test_modules = {path.stem for path in tests_folder.glob("test_*.py")}
    offenders = []
    for path in sorted(tests_folder.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{path.name}: {name}" for name in names if name.split(".")[-1] in test_modules]
    assert not offenders, offenders
