"""One call on the other core (``forked.apart``), and the policy judged there while the
units render (``pipeline.build_incremental``): the same report as judged here, its errors
still first, nothing written after them, and a worker that dies is an error, not a hang."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from generator import pipeline
from generator.errors import CatalogErrors
from generator.output import forked, parallel, units
from helpers.catalog_edit import override
from helpers.processes import record_pids
from helpers.repo import snapshot
from tests.helpers.repo import copy_repo


def test_the_call_runs_in_another_process_and_its_result_comes_back() -> None:
    with forked.apart(os.getpid, wanted=True) as result:
        assert result() != os.getpid()


def test_what_the_call_raised_is_raised_when_asked() -> None:
    def fails() -> None:
        raise ValueError("no such thing")

    with forked.apart(fails, wanted=True) as result, pytest.raises(ValueError, match="no such thing"):
        result()


def test_a_worker_that_dies_is_an_error() -> None:
    with forked.apart(lambda: os.kill(os.getpid(), signal.SIGKILL), wanted=True) as result, pytest.raises(OSError, match="died"):
        result()


def test_unwanted_the_call_runs_here_before_the_block() -> None:
    order: list[str] = []
    with forked.apart(lambda: order.append(f"call {os.getpid()}") or 7, wanted=False) as result:
        order.append("block")
        assert result() == 7
    assert order == [f"call {os.getpid()}", "block"]


@pytest.fixture
def apart(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The sample judged on the other core (it is too small for that otherwise); the file
    each process that judges adds its pid to (a worker's list would stay in the worker)."""
    monkeypatch.setattr(parallel, "MIN_DEPLOYMENTS", 0)
    monkeypatch.setenv("COMPANYOS_JOBS", "2")
    return record_pids(monkeypatch, pipeline, "evaluate", tmp_path / "judged-by")


def test_the_policy_judged_apart_is_the_policy_judged_here(tmp_path: Path, apart: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    override(repo, "globex", "prod", {"database": {"multi_az": False}})
    (repo / "catalog/waivers.yaml").write_text(
        "waivers:\n  - rule: CO007\n    tenant: globex\n    reason: migration to a larger pool is scheduled for Q3\n"
        "    approver: cto@example.com\n    expires: 2999-12-31\n"
    )
    built, _ = pipeline.build_incremental(repo)
    judged_by = apart.read_text().split()
    assert len(judged_by) == 1 and judged_by != [str(os.getpid())]  # judged once, in the worker
    here = pipeline.judge(built.model)
    assert built.policy == here and [str(w) for w in built.policy.waived] and "[CO007]" in str(built.policy.waived[0])


def test_policy_errors_judged_apart_come_first_and_nothing_is_written(tmp_path: Path, apart: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A violation (CO007) while the render fails too: the policy's errors are raised, as
    when the policy ran before the render, and the tree is as it was."""
    repo = copy_repo(tmp_path / "repo")
    override(repo, "globex", "prod", {"database": {"multi_az": False}})
    before = snapshot(repo)

    def render_fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise CatalogErrors([])

    with pytest.raises(CatalogErrors) as raised:
        pipeline.render_tree(repo)
    assert any("CO007" in str(e) for e in raised.value.errors)
    assert apart.read_text().split() and str(os.getpid()) not in apart.read_text().split()
    monkeypatch.setattr(units, "render_incremental", render_fails)
    with pytest.raises(CatalogErrors) as raised:
        pipeline.render_tree(repo)
    assert raised.value.errors and any("CO007" in str(e) for e in raised.value.errors)
    assert snapshot(repo) == before


def _write_pid(item: str) -> None:
    """An item of :func:`forked.each_forked`: its worker's pid, in a file named by the item."""
    folder, name = item.rsplit("/", 1)
    Path(folder, name).write_text(str(os.getpid()))


def _fail_on_seven(item: str) -> None:
    if item.endswith("/7"):
        raise ValueError("item 7 does not parse")
    _write_pid(item)


def test_each_forked_runs_every_item_in_other_processes(tmp_path: Path) -> None:
    items = [f"{tmp_path}/{n}" for n in range(100)]
    forked.each_forked(_write_pid, items, 2, who="test")
    pids = {int((tmp_path / str(n)).read_text()) for n in range(100)}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_each_forked_with_one_worker_runs_here_in_order(tmp_path: Path) -> None:
    forked.each_forked(_write_pid, [f"{tmp_path}/a", f"{tmp_path}/b"], 1, who="test")
    assert {(tmp_path / n).read_text() for n in "ab"} == {str(os.getpid())}


def test_each_forked_fails_when_a_worker_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="item 7"):
        forked.each_forked(_fail_on_seven, [f"{tmp_path}/{n}" for n in range(40)], 2, who="test")
