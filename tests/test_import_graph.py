"""The package's imports flow one way: inputs -> encoders -> losses -> training -> estimators.

Every module of ``cwcl_sk`` is parsed (``ast``, nothing is imported), module names are derived
from file paths, and every ``import`` statement counts, also those inside functions (a late
import still runs, and still closes a cycle); only ``if TYPE_CHECKING:`` blocks are left out.
Importing a submodule from outside its package runs the package's ``__init__`` first, so it
counts as importing that package too (the root ``cwcl_sk`` only when named).
"""

import ast
from pathlib import Path

import pytest

import cwcl_sk

PACKAGE_ROOT = Path(cwcl_sk.__file__).resolve().parent
PACKAGE = PACKAGE_ROOT.name

# Layers by module-name prefix, so that modules may move and split inside them.
LOSS_LAYER = ("cwcl_sk.losses", "cwcl_sk.kernels", "cwcl_sk._gram")
ENCODER_LAYER = ("cwcl_sk.encoders",)
INPUT_LAYER = ("cwcl_sk.inputs",)
TRAINING_LAYER = ("cwcl_sk.training", "cwcl_sk.callbacks")
ESTIMATOR_LAYER = ("cwcl_sk.aligner", "cwcl_sk.zero_shot", "cwcl_sk.cli", "cwcl_sk.demo")
# What an estimator hands its fit and its saved folders to: it takes the estimator as an
# argument, so it sits below the estimators and above training.
ESTIMATOR_SUPPORT = ("cwcl_sk._fit_session", "cwcl_sk._saved_state")


def module_name(path: Path, root: Path = PACKAGE_ROOT) -> str:
    """``cwcl_sk/training/loop.py`` -> ``cwcl_sk.training.loop``; a package is its folder."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path = PACKAGE_ROOT) -> dict[str, Path]:
    """Every module of the package under ``root``, by name."""
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def _is_type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _import_nodes(tree: ast.AST):
    """Every import statement, at any depth, outside ``if TYPE_CHECKING:`` blocks."""
    pending = [tree]
    while pending:
        node = pending.pop()
        if _is_type_checking_block(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        pending.extend(ast.iter_child_nodes(node))


def _known(name: str, modules) -> str | None:
    """The longest module of the package that ``name`` starts with (``a.b.func`` -> ``a.b``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imported_modules(name: str, path: Path, modules) -> set[str]:
    """The package's modules that module ``name`` (at ``path``) imports directly."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    targets = set()
    for node in _import_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, *([node.module] if node.module else [])])
        for alias in node.names:
            # ``from .x import y`` imports the submodule x.y when there is one.
            submodule = f"{base}.{alias.name}"
            targets.add(submodule if submodule in modules else base)
    resolved = {_known(target, modules) for target in targets}
    resolved.discard(None)
    resolved.discard(name)
    for target in list(resolved):
        # Importing a submodule from outside its package runs the package's __init__.
        parent = target.rpartition(".")[0]
        while parent and parent != PACKAGE and not (name + ".").startswith(parent + "."):
            resolved.add(parent)
            parent = parent.rpartition(".")[0]
    return resolved


def import_graph(root: Path = PACKAGE_ROOT) -> dict[str, set[str]]:
    """Module name -> the package's modules it imports directly."""
    modules = package_modules(root)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None when the graph has none."""
    state = dict.fromkeys(graph, "new")
    for start in sorted(graph):
        if state[start] != "new":
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = "open"
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = "done"
            elif state.get(child) == "open":
                return [*path[path.index(child) :], child]
            elif state.get(child) == "new":
                state[child] = "open"
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Every module ``start`` imports, directly or not, each with the module importing it."""
    via, pending = {}, [start]
    while pending:
        node = pending.pop()
        for child in graph.get(node, ()):
            if child not in via and child != start:
                via[child] = node
                pending.append(child)
    return via


def _chain(via: dict[str, str], start: str, end: str) -> str:
    chain = [end]
    while chain[-1] != start:
        chain.append(via[chain[-1]])
    return " -> ".join(reversed(chain))


def _in_layer(name: str, layer: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in layer)


def layer_violations(graph, lower: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    """Import chains from a module of ``lower`` to a module of ``forbidden`` (or the root)."""
    violations = []
    for name in sorted(graph):
        if not _in_layer(name, lower):
            continue
        via = reachable(graph, name)
        for target in sorted(via):
            # The root package imports every estimator.
            if _in_layer(target, forbidden) or target == PACKAGE:
                violations.append(_chain(via, name, target))
    return violations


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_the_graph_covers_every_layer(graph):
    """Guards the checks below against walking an empty or mis-named package."""
    for layer in (LOSS_LAYER, ENCODER_LAYER, INPUT_LAYER, TRAINING_LAYER, ESTIMATOR_LAYER):
        assert any(_in_layer(name, layer) for name in graph), layer
    assert "cwcl_sk.aligner" in reachable(graph, PACKAGE)


def test_package_imports_have_no_cycle(graph):
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_losses_and_kernels_import_no_encoder_training_or_estimator_module(graph):
    forbidden = ENCODER_LAYER + TRAINING_LAYER + ESTIMATOR_LAYER
    assert layer_violations(graph, LOSS_LAYER, forbidden) == []


def test_training_encoders_and_inputs_import_no_estimator_module(graph):
    lower = TRAINING_LAYER + ENCODER_LAYER + INPUT_LAYER + ("cwcl_sk.persistence",)
    assert layer_violations(graph, lower, ESTIMATOR_LAYER + ESTIMATOR_SUPPORT) == []


def test_fit_session_and_saved_state_import_no_estimator_module(graph):
    assert all(name in graph for name in ESTIMATOR_SUPPORT)
    assert layer_violations(graph, ESTIMATOR_SUPPORT, ESTIMATOR_LAYER) == []


def test_version_has_a_module_of_its_own(graph):
    assert graph["cwcl_sk._version"] == set()


# -- the checker itself, on a package written for the purpose ----------------------------


def _write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / PACKAGE
    for relative, text in files.items():
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_checker_finds_a_cycle_closed_by_a_late_import(tmp_path):
    package = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "training/__init__.py": "from .loop import run\n",
            "training/loop.py": "from ..callbacks import Checkpoint\n",
            "callbacks.py": "def save():\n    from .aligner import Aligner\n",
            "aligner.py": "from .training import run\n",
        },
    )
    graph = import_graph(package)
    cycle = find_cycle(graph)
    assert cycle is not None
    assert {"cwcl_sk.callbacks", "cwcl_sk.aligner", "cwcl_sk.training.loop"} <= set(cycle)
    assert layer_violations(graph, TRAINING_LAYER, ESTIMATOR_LAYER)


def test_checker_counts_the_package_init_and_skips_type_checking_imports(tmp_path):
    package = _write_package(
        tmp_path,
        {
            "__init__.py": "from .aligner import Aligner\n",
            "aligner.py": "from .losses.core import loss\n",
            "losses/__init__.py": "",
            "losses/core.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from ..aligner import Aligner\n"
                "from .. import __version__\n"
            ),
        },
    )
    graph = import_graph(package)
    assert graph["cwcl_sk.aligner"] == {"cwcl_sk.losses", "cwcl_sk.losses.core"}
    assert graph["cwcl_sk.losses.core"] == {"cwcl_sk"}
    assert find_cycle(graph) is not None  # losses.core -> cwcl_sk -> aligner -> losses.core
    assert layer_violations(graph, LOSS_LAYER, ESTIMATOR_LAYER)
