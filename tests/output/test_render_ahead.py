"""The units a run will render, foreseen from the catalog files that changed and rendered on
the other core while the plan runs (``units.foreseen``, ``units.Early``,
``forked.apart_in_turn``): taken only when the plan renders exactly those tenants, so the
tree is the one a full render makes; the policy is then judged here, its errors still first."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from generator import pipeline
from generator.catalog.snapshot import at as snapshot_at
from generator.errors import CatalogErrors, UsageError
from generator.model import references
from generator.output import forked, parallel, tree, units
from helpers.baseline import check_base, forge
from helpers.catalog_edit import edit_yaml, override, write_tenant
from helpers.gitrepo import commit_all
from helpers.processes import pids, record_pids
from helpers.repo import snapshot
from tests.helpers.repo import copy_repo


def test_calls_apart_run_in_turn_in_one_worker() -> None:
    with forked.apart_in_turn([os.getpid, time.monotonic_ns, os.getpid], wanted=True) as (first, clock, last):
        assert first() == last() != os.getpid()
        assert isinstance(clock(), int)


def test_a_call_nobody_asks_for_is_stopped_when_the_block_ends() -> None:
    started = time.monotonic()
    with forked.apart_in_turn([os.getpid, lambda: time.sleep(60)], wanted=True) as (worker, _):
        pid = worker()
    assert time.monotonic() - started < 30  # not the 60 s the second call sleeps
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped


def test_unwanted_every_call_runs_here_first_in_order() -> None:
    order: list[int] = []
    with forked.apart_in_turn([lambda: order.append(1) or 1, lambda: order.append(2) or 2], wanted=False) as (one, two):
        assert order == [1, 2]
        assert (one(), two()) == (1, 2)


@pytest.fixture
def rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the sample, rendered once (its parses cached), with the other core used
    (the sample is too small for that otherwise)."""
    monkeypatch.setattr(parallel, "MIN_DEPLOYMENTS", 0)
    monkeypatch.setenv("COMPANYOS_JOBS", "2")
    repo = copy_repo(tmp_path / "repo")
    pipeline.render_tree(repo)
    return repo


@pytest.fixture
def calls(rendered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Where each render and each judgement ran, by pid."""
    return {
        "render": record_pids(monkeypatch, units, "render", tmp_path / "rendered-by"),
        "judge": record_pids(monkeypatch, pipeline, "evaluate", tmp_path / "judged-by"),
    }


def _owner(repo: Path, tenant: str, owner: str) -> None:
    edit_yaml(repo / f"tenants/{tenant}.yaml", lambda data: data.__setitem__("owner", owner))


def test_which_tenants_are_foreseen(rendered: Path) -> None:
    def foreseen() -> frozenset[str] | None:
        model = pipeline.resolve_only(rendered)
        assert model.catalog.parses is not None
        return units.foreseen(model, units.digests(rendered, model), model.catalog.parses.fresh, units.working_tree(rendered))

    assert foreseen() == frozenset()  # nothing changed since the render
    _owner(rendered, "acme", "platform@example.com")
    _owner(rendered, "globex", "platform@example.com")
    assert foreseen() == {"acme", "globex"}
    pipeline.render_tree(rendered)
    assert foreseen() == frozenset()
    edit_yaml(rendered / "catalog/tiers/standard.yaml", lambda data: data.__setitem__("description", "changed"))
    assert foreseen() is None  # not a tenant's file: everything renders
    pipeline.render_tree(rendered)
    (rendered / "templates/runbooks/restore.md.j2").write_text((rendered / "templates/runbooks/restore.md.j2").read_text() + "\n")
    assert foreseen() is None  # no catalog file changed, but the context did


def _slowed(monkeypatch: pytest.MonkeyPatch, module: object, name: str, *, here: bool) -> None:
    """``module.name`` made 5 s slower, in this process (``here``) or in the worker only."""
    real, parent = getattr(module, name), os.getpid()

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        if (os.getpid() == parent) == here:
            time.sleep(5)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, slow)


def test_a_one_tenant_edit_takes_the_render_made_on_the_other_core(
    rendered: Path, calls: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's render is not there when the plan is done: the policy is judged here
    meanwhile (first: its twin in the worker starts after the render)."""
    _slowed(monkeypatch, units, "render_fresh", here=False)
    _owner(rendered, "acme", "platform@example.com")
    done = pipeline.render_tree(rendered)
    assert done.report.written
    assert len(pids(calls["render"])) == 1 and str(os.getpid()) not in pids(calls["render"])  # rendered in the worker alone
    assert pids(calls["judge"])[0] == str(os.getpid())
    assert done.built is not None and done.built.policy == pipeline.judge(pipeline.resolve_only(rendered))
    _, status = pipeline.check(rendered, full=True)
    assert status.clean


def test_a_render_made_before_the_plan_is_done_leaves_the_policy_to_the_worker(
    rendered: Path, calls: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _slowed(monkeypatch, units, "plan", here=True)
    _owner(rendered, "acme", "platform@example.com")
    done = pipeline.render_tree(rendered)
    assert str(os.getpid()) not in pids(calls["render"])
    assert len(pids(calls["judge"])) == 1 and str(os.getpid()) not in pids(calls["judge"])  # judged there, after the render
    assert done.built is not None and done.built.policy == pipeline.judge(pipeline.resolve_only(rendered))


def test_a_plan_that_renders_other_tenants_renders_here(rendered: Path, calls: dict[str, Path]) -> None:
    """acme is foreseen; a hand edit of globex's output makes the plan render globex too:
    the worker's render is not the one the plan needs, and the tree still ends as a full
    render makes it."""
    _owner(rendered, "acme", "platform@example.com")
    edited = next(p for p in sorted((rendered / "rendered").rglob("*globex*")) if p.is_file())
    edited.write_bytes(edited.read_bytes() + b"# by hand\n")
    pipeline.render_tree(rendered)
    assert str(os.getpid()) in pids(calls["render"])  # the plan's render, here
    assert b"# by hand" not in edited.read_bytes()
    _, status = pipeline.check(rendered, full=True)
    assert status.clean


def test_policy_errors_come_first_when_the_render_ahead_fails(
    rendered: Path, calls: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CO007 violation in the edited tenant while the render on the other core fails: the
    policy's errors are raised, and nothing is written."""
    override(rendered, "globex", "prod", {"database": {"multi_az": False}})
    before = snapshot(rendered)
    with pytest.raises(CatalogErrors) as raised:
        pipeline.render_tree(rendered)
    assert any("CO007" in str(e) for e in raised.value.errors)
    assert str(os.getpid()) in pids(calls["judge"])

    def fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise CatalogErrors([])

    monkeypatch.setattr(units, "render_fresh", fails)
    with pytest.raises(CatalogErrors) as raised:
        pipeline.render_tree(rendered)
    assert any("CO007" in str(e) for e in raised.value.errors)
    assert snapshot(rendered) == before


def test_check_base_takes_the_render_made_on_the_other_core(rendered: Path, calls: dict[str, Path]) -> None:
    """The tenants foreseen from the tenant files whose bytes are not the base's."""
    commit_all(rendered, "base")
    _owner(rendered, "acme", "platform@example.com")
    pipeline.render_tree(rendered)
    commit_all(rendered, "acme's owner")
    calls["render"].write_text("")
    _, plan, clean, problems = check_base(rendered, "HEAD~1")
    assert clean, problems
    assert plan.render == {"acme"} and pids(calls["render"]) and str(os.getpid()) not in pids(calls["render"])


def test_check_base_compares_a_forged_output_with_the_render_made_on_the_other_core(rendered: Path, calls: dict[str, Path]) -> None:
    """The edited tenant's output and its entry forged together in the pull request."""
    commit_all(rendered, "base")
    _owner(rendered, "acme", "platform@example.com")
    pipeline.render_tree(rendered)
    forged = next(p for p in sorted((rendered / "rendered/helm").rglob("*acme*")) if p.is_file())
    forge(rendered, forged.relative_to(rendered).as_posix(), forged.read_bytes() + b"# forged\n", "tenant/acme")
    commit_all(rendered, "acme's owner, and a forged file")
    calls["render"].write_text("")
    _, plan, clean, problems = check_base(rendered, "HEAD~1")
    assert plan.render == {"acme"} and str(os.getpid()) not in pids(calls["render"])
    assert not clean and forged.relative_to(rendered).as_posix() in problems


def _judged_names_where(monkeypatch: pytest.MonkeyPatch, late: str, log: Path) -> Path:
    """Record where the names are judged, with the worker's render (``late`` "worker") or this
    process's plan ("here") made 5 s slower."""
    if late == "worker":
        _slowed(monkeypatch, units, "render_fresh", here=False)
    else:
        _slowed(monkeypatch, units, "plan", here=True)
    return record_pids(monkeypatch, pipeline, "check_names", log)


def _judged_in(log: Path) -> str:
    """Where the names were judged first (the worker's twin may finish after this process's)."""
    return "here" if pids(log)[0] == str(os.getpid()) else "worker" if str(os.getpid()) not in pids(log) else "both"


@pytest.mark.parametrize("late", ["worker", "here"])
def test_check_base_judges_the_names_with_the_policy(rendered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, late: str) -> None:
    """``check --base`` reads no cache, so no memo of the names: they are judged with the
    policy in the worker (``pipeline.resolve_named``), even when this process is done first
    (it waits: the check's table of every name is not built beside its plan)."""
    commit_all(rendered, "base")
    _owner(rendered, "acme", "platform@example.com")
    pipeline.render_tree(rendered)
    commit_all(rendered, "acme's owner")
    named = _judged_names_where(monkeypatch, late, tmp_path / "named-by")
    loaded = record_pids(monkeypatch, references, "check_names", tmp_path / "loaded-by")  # the load's own check
    with snapshot_at(rendered, "HEAD~1") as base:
        built, plan = pipeline.build_incremental(rendered, base)
    assert _judged_in(named) == "worker" and pids(loaded) == []
    assert plan.render == {"acme"} and built.policy == pipeline.judge(pipeline.resolve_only(rendered))


@pytest.mark.parametrize("late", ["worker", "here"])
def test_a_name_clash_judged_with_the_policy_is_refused_as_the_load_refuses_it(
    rendered: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, late: str
) -> None:
    """``namespace-acme`` + service ``api`` claims ``acme-api``'s Application
    ``dev-namespace-acme-api``: the same errors, root causes first, as ``load`` raises."""
    commit_all(rendered, "base")
    write_tenant(rendered, "acme-api", "web")
    write_tenant(rendered, "namespace-acme", "api")
    named = _judged_names_where(monkeypatch, late, tmp_path / "named-by")
    before = snapshot(rendered)
    with pytest.raises(CatalogErrors) as judged, snapshot_at(rendered, "HEAD") as base:
        pipeline.build_incremental(rendered, base)
    assert _judged_in(named) == "worker"
    with pytest.raises(CatalogErrors) as loaded:
        pipeline.load(rendered, parses="none")
    assert judged.value.errors == loaded.value.errors and judged.value.root_cause_count == loaded.value.root_cause_count
    assert any("dev-namespace-acme-api" in str(e) and "collides with" in str(e) for e in judged.value.errors)
    assert snapshot(rendered) == before


def test_check_base_compares_the_tree_and_the_base_while_the_policy_is_judged(
    rendered: Path, calls: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``check_against`` (``check --base``): the tree's comparison and the destruction report
    are made before the policy's verdict is awaited, not after it."""
    commit_all(rendered, "base")
    _owner(rendered, "acme", "platform@example.com")
    pipeline.render_tree(rendered)
    commit_all(rendered, "acme's owner")
    order: list[str] = []
    real_status, real_verdict = tree.status, pipeline._Verdict.__call__
    monkeypatch.setattr(tree, "status", lambda *a, **k: order.append("status") or real_status(*a, **k))
    monkeypatch.setattr(pipeline._Verdict, "__call__", lambda self: (real_verdict(self), order.append("verdict"))[0])
    with snapshot_at(rendered, "HEAD~1") as base:
        built, status, reused = pipeline.check_against(rendered, base, lambda model, result, reused: order.append("against") or reused)
    assert order == ["status", "against", "verdict"]
    assert status.clean and reused == built.reused and "acme" not in reused and "globex" in reused


def test_check_base_policy_errors_come_first_when_the_comparison_with_the_base_fails(rendered: Path) -> None:
    """A CO007 violation while the destruction report (made while the policy is judged)
    fails: the policy's errors are raised."""
    commit_all(rendered, "base")
    override(rendered, "globex", "prod", {"database": {"multi_az": False}})

    def fails(*args: object) -> None:
        raise UsageError("the report failed")

    with snapshot_at(rendered, "HEAD") as base, pytest.raises(CatalogErrors) as raised:
        pipeline.check_against(rendered, base, fails)
    assert any("CO007" in str(e) for e in raised.value.errors)


def test_check_base_foresees_from_the_base_objects_without_waiting_for_gits_proof(rendered: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guess reads the base's global manifest from git's objects: git's proof of the
    working tree (``git diff HEAD``, ~1.7 s at 10,000 tenants x 3) is still running then, and
    the render foreseen would otherwise start only when it is done. The working tree's copy
    of that manifest, garbled here, is never what the guess reads."""
    commit_all(rendered, "base")
    _owner(rendered, "acme", "platform@example.com")
    pipeline.render_tree(rendered)
    (rendered / units.unit_path(units.GLOBAL)).write_text("{not json")
    with snapshot_at(rendered, "HEAD") as base:
        asked: list[str] = []
        monkeypatch.setattr(base, "_moving", lambda: asked.append("proof") or frozenset())
        model = pipeline.resolve_named(rendered, "reuse")
        assert pipeline._foreseen(rendered, model, units.digests(rendered, model), base) == {"acme"}
        assert asked == []
        stored = base.stored(units.unit_path(units.GLOBAL))
        assert stored is not None and units.parse_unit(stored) is not None
        assert base.stored("rendered/not-a-manifest.yaml") is None
