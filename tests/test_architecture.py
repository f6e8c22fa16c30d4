"""The architecture, checked: the layer contracts in pyproject.toml hold, no two modules of
``generator/`` import each other even indirectly (function-local and ``TYPE_CHECKING``
imports count), every module opens with a short docstring, and docs/architecture.md's
module table names exactly the modules that exist.

The graph and the contracts are computed in a subprocess whose working directory is the tree
under test, so the same code checks the real package and a copy with a planted fault."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "generator"
#: Vendored upstream data and tools: not the project's code, not in the layers.
VENDOR = PACKAGE / "vendor"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
#: A docstring longer than this is an essay; its reasoning belongs in docs/.
MAX_DOCSTRING_LINES = 15

# grimp parses every import statement in a module, including those inside functions and
# under ``if TYPE_CHECKING:`` (``exclude_type_checking_imports`` is False); the planted
# faults below prove both kinds are seen.
_GRAPH_SCRIPT = """
import json, sys
from pathlib import Path
import grimp, generator
here = Path.cwd().resolve()
assert Path(generator.__file__).resolve().is_relative_to(here), generator.__file__
graph = grimp.build_graph("generator", exclude_type_checking_imports=False, cache_dir=None)
print(json.dumps({m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}))
"""


def import_graph(root: Path) -> dict[str, list[str]]:
    """``{module: [modules it imports]}`` for the ``generator`` package found under ``root``."""
    proc = subprocess.run([sys.executable, "-c", _GRAPH_SCRIPT], cwd=root, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    graph: dict[str, list[str]] = json.loads(proc.stdout)
    return graph


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """One concrete cycle (``[a, b, ..., a]``) per strongly connected component that has one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for start in sorted(graph):  # iterative Tarjan: deep chains must not hit the recursion limit
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in graph:
                    continue
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(graph[succ])))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        components.append(component)
    return [_cycle_through(graph, component) for component in components]


def _cycle_through(graph: dict[str, list[str]], component: set[str]) -> list[str]:
    """The shortest path from the component's first module back to itself (breadth first)."""
    start = min(component)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in graph[node]:
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if succ in component and succ not in parent:
                    parent[succ] = node
                    following.append(succ)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # unreachable for a strongly connected component


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter's contracts (``[tool.importlinter]`` of ``root/pyproject.toml``) on ``root``."""
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=root, capture_output=True, text=True, check=False)


def copy_package(dest: Path) -> Path:
    """The package's Python files and pyproject.toml, for planting a fault in."""
    shutil.copytree(PACKAGE, dest / "generator", ignore=_all_but_python)
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _all_but_python(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__" or not (n.endswith(".py") or (Path(folder) / n).is_dir())]


def plant(root: Path, module: str, code: str) -> None:
    path = root / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text(encoding="utf-8") + "\n" + code, encoding="utf-8")


def project_modules() -> set[str]:
    """Every module of the project as a path under generator/ (``catalog/load.py``), vendor excluded."""
    return {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if not p.is_relative_to(VENDOR)}


# --- the real tree ------------------------------------------------------------------------


def test_no_import_cycles_counting_function_local_and_type_checking_imports() -> None:
    graph = import_graph(REPO)
    assert "generator.pipeline" in graph and "generator.model.naming" in graph  # the real package was read
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_import_linter_contracts_are_kept() -> None:
    proc = lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout
    for contract in ("Packages by pipeline stage", "Output targets never import each other", "Vendored upstream data is read only by ops"):
        assert contract in proc.stdout  # each contract ran


# --- planted faults: the checks can fail ----------------------------------------------------

#: ``errors`` is the bottom layer and ``pipeline`` (which imports it) sits far above: any import
#: of pipeline from errors closes a cycle and breaks the layers.
UPWARD = {
    "top-level": "from generator import pipeline\n",
    "function-local": "def _planted() -> None:\n    from generator import pipeline  # noqa: F401\n",
    "TYPE_CHECKING": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from generator.pipeline import Build\n",
}


@pytest.mark.parametrize("kind", sorted(UPWARD))
def test_a_planted_upward_import_makes_a_cycle_that_is_reported(tmp_path: Path, kind: str) -> None:
    assert "generator.errors" in import_graph(REPO)["generator.pipeline"]  # the premise of the plant
    root = copy_package(tmp_path)
    plant(root, "generator.errors", UPWARD[kind])
    found = cycles(import_graph(root))
    assert len(found) == 1
    cycle = found[0]
    assert cycle[0] == cycle[-1] and {"generator.errors", "generator.pipeline"} <= set(cycle)


def test_a_planted_upward_import_breaks_the_layers_contract_by_name(tmp_path: Path) -> None:
    root = copy_package(tmp_path)
    plant(root, "generator.model.naming", "def _planted() -> None:\n    from generator.output import render  # noqa: F401\n")
    proc = lint_imports(root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Packages by pipeline stage: dependencies point downward only BROKEN" in proc.stdout
    assert "generator.model.naming -> generator.output.render" in proc.stdout


def test_a_target_importing_another_target_breaks_independence(tmp_path: Path) -> None:
    root = copy_package(tmp_path)
    plant(root, "generator.targets.helm", "from generator.targets.terraform import hcl  # noqa: F401\n")
    proc = lint_imports(root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Output targets never import each other (shared helpers live in targets.common" in proc.stdout
    assert "BROKEN" in proc.stdout and "generator.targets.helm -> generator.targets.terraform.hcl" in proc.stdout


def test_vendored_data_read_outside_ops_breaks_its_contract(tmp_path: Path) -> None:
    root = copy_package(tmp_path)
    plant(root, "generator.targets.helm", "from generator import vendor  # noqa: F401\n")
    proc = lint_imports(root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Vendored upstream data is read only by ops (lint) BROKEN" in proc.stdout
    assert "generator.targets.helm -> generator.vendor" in proc.stdout


def test_a_new_top_level_module_must_be_placed_in_the_layers(tmp_path: Path) -> None:
    root = copy_package(tmp_path)
    (root / "generator" / "stray.py").write_text('"""Nobody placed me."""\n', encoding="utf-8")
    proc = lint_imports(root)
    assert proc.returncode != 0
    assert "generator.stray" in proc.stdout + proc.stderr


def test_cycle_finder_reports_the_path() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["e"]}
    assert sorted(cycles(graph)) == [["a", "b", "c", "a"], ["e", "e"]]
    assert cycles({"a": ["b"], "b": []}) == []


# --- docstrings and docs/architecture.md ----------------------------------------------------


def test_every_module_opens_with_a_short_docstring() -> None:
    problems = []
    for rel in sorted(project_modules()):
        doc = ast.get_docstring(ast.parse((PACKAGE / rel).read_text(encoding="utf-8")), clean=True)
        if not doc or len(doc.split()) < 3:
            problems.append(f"{rel}: no docstring that says what the module is for")
        elif len(doc.splitlines()) > MAX_DOCSTRING_LINES:
            problems.append(f"{rel}: {len(doc.splitlines())}-line docstring; move the reasoning to docs/")
    assert not problems, "\n".join(problems)


def architecture_table() -> list[str]:
    """The first-column paths of the module table in docs/architecture.md, in order."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("\n## Modules\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def test_architecture_module_table_lists_exactly_the_modules_that_exist() -> None:
    listed = architecture_table()
    assert len(listed) == len(set(listed)), "a module is listed twice"
    missing = project_modules() - set(listed)
    unknown = set(listed) - project_modules()
    assert not missing, f"modules missing from docs/architecture.md's table: {sorted(missing)}"
    assert not unknown, f"docs/architecture.md's table names modules that do not exist: {sorted(unknown)}"
