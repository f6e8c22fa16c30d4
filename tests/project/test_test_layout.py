"""The test suite's own layout: folders mirror the package's stages, and test modules share
code only through ``tests/helpers`` (plain functions) and ``conftest.py`` (fixtures), never by
importing each other or ``conftest`` (which would register fixtures twice and break under
``--import-mode=importlib``)."""

from __future__ import annotations

import ast

from helpers.repo import REPO

TESTS = REPO / "tests"
#: Folders that are not a stage of the package: shared helpers, whole-project properties,
#: cross-cutting hardening, and the documentation's own tests.
NOT_A_STAGE = {"helpers", "project", "hardening", "docs"}


def forbidden_imports(source: str) -> list[str]:
    """Modules a test module imports that it must not: ``conftest`` and other test modules."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        found += [n for n in names if n.split(".")[0] == "conftest" or n.split(".")[-1].startswith("test_")]
    return found


def test_no_test_module_imports_conftest_or_another_test_module():
    offenders = {
        path.relative_to(TESTS).as_posix(): bad
        for path in sorted(TESTS.rglob("*.py"))
        if (bad := forbidden_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_the_import_check_sees_every_form():
    assert forbidden_imports("from conftest import REPO\nimport test_policy\nfrom test_destructive import commit_all\n") == [
        "conftest",
        "test_policy",
        "test_destructive",
    ]
    assert forbidden_imports("def f():\n    from conftest import copy_repo\n") == ["conftest"]
    assert forbidden_imports("from helpers.repo import REPO\nimport pytest\nfrom generator import pipeline\n") == []


def test_test_folders_mirror_the_package():
    package = REPO / "generator"
    for folder in sorted(p for p in TESTS.rglob("*") if p.is_dir() and p.name != "__pycache__"):
        rel = folder.relative_to(TESTS)
        if rel.parts[0] in NOT_A_STAGE:
            continue
        assert (package / rel).is_dir(), f"tests/{rel.as_posix()} mirrors no generator/{rel.as_posix()}"


def test_helpers_hold_no_tests_or_fixtures():
    for path in sorted((TESTS / "helpers").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                assert not node.name.startswith("test_"), f"{path.name}: {node.name}"
                assert not any("fixture" in ast.unparse(d) for d in node.decorator_list), f"{path.name}: fixture {node.name}"
