"""``bench/floor.py`` times what every ``render`` of a rendered tree does before any catalog
work: start and import, git's stat of every output file, the folder walk. Its figures are
only worth quoting if it runs exactly those over the whole tree, so this runs it on the
sample tree committed in a scratch repository and checks what it counted and ran."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator.catalog.folders import OUTPUT_DIRS
from generator.git import scratch_repo
from generator.output import walk_apart
from generator.output.committed import PROOF_INDEX
from generator.output.listing import CACHE_DIR
from helpers.repo import REPO, copy_repo

sys.path.insert(0, str(REPO / "bench"))
import floor  # bench/floor.py


@pytest.fixture
def committed(tmp_path: Path) -> Path:
    """The sample tree, committed."""
    root = copy_repo(tmp_path / "repo")
    repo = scratch_repo(root)
    repo.git.add("-A")
    repo.git.commit("-q", "-m", "base")
    return root


def test_the_floor_counts_the_whole_tree_and_adds_its_steps_up(committed: Path) -> None:
    found = floor.measure(committed, repeat=1)
    files = folders = 0
    for top in OUTPUT_DIRS:
        for _, _dirs, names in os.walk(committed / top):
            files += len(names)
            folders += 1
    assert found["files"] == files > 100  # every tracked output file (the sample tree is clean)
    assert found["folders"] == folders
    medians = found["medians"]
    assert isinstance(medians, dict) and set(medians) == {"startup", "git_stat_threads", "git_stat_one_thread", "walk", "together"}
    assert all(m["seconds"] > 0 and m["cpu"] > 0 for m in medians.values())
    assert found["floor_s"] == pytest.approx(medians["startup"]["seconds"] + medians["together"]["seconds"], abs=0.002)
    assert found["left_for_the_catalog_s"] == pytest.approx(floor.ASKED_S - found["floor_s"], abs=0.002)
    table = floor.markdown(found)
    assert f"{files:,} tracked output files, {folders:,} folders" in table and f"**{found['floor_s']:.2f} s**" in table


def test_git_stats_the_outputs_against_the_proven_index_copy(committed: Path) -> None:
    """The timed git call is the render's: ``diff-files`` over the outputs, asked about the
    proven copy of the index once a render recorded one (``committed.record`` copies git's
    index there), else about git's own. A file changed on disk is what it lists either way."""
    changed = committed / "rendered/helm/dev/acme/api.yaml"
    changed.write_bytes(changed.read_bytes() + b"# edited\n")
    argv, env = floor.git_stat(committed, threads=False)
    assert "core.preloadIndex=false" in argv and floor.git_stat(committed, threads=True)[0][:2] == ["git", "diff-files"]
    assert env.get("GIT_INDEX_FILE") == os.environ.get("GIT_INDEX_FILE")
    before = subprocess.run(argv, cwd=committed, env=env, check=True, capture_output=True).stdout
    proof = committed / CACHE_DIR / PROOF_INDEX
    proof.parent.mkdir(parents=True)
    shutil.copyfile(committed / ".git/index", proof)
    argv, env = floor.git_stat(committed, threads=True)
    assert env["GIT_INDEX_FILE"] == os.fspath(proof)
    after = subprocess.run(argv, cwd=committed, env=env, check=True, capture_output=True).stdout
    assert before.split(b"\0")[:-1] == after.split(b"\0")[:-1] == [b"rendered/helm/dev/acme/api.yaml"]


def test_the_walk_timed_is_the_child_render_starts(committed: Path) -> None:
    argv, _ = floor.walk(committed)
    assert argv == walk_apart.command(committed, OUTPUT_DIRS)
    with walk_apart.started(committed, OUTPUT_DIRS) as running:
        assert running._child is not None and running._child.args == argv


def test_a_step_that_fails_fails_the_bench(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="exited 1"):
        floor.timed((["git", "diff-files", "--no-such-option"], dict(os.environ)), cwd=tmp_path)


def test_the_floor_is_the_start_and_both_stat_passes_at_once(committed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The arithmetic, with each step's time known: medians of the runs, and the floor the
    start plus the git stat and the walk run together (not either alone)."""
    seconds = iter([0.1, 1.0, 2.0, 0.5, 1.2, 0.3, 1.1, 2.2, 0.6, 1.4, 0.2, 0.9, 1.8, 0.7, 1.3])

    def fake(*commands: tuple[list[str], dict[str, str]], cwd: Path) -> floor.Timed:
        took = next(seconds)
        return floor.Timed(took, took * len(commands))

    monkeypatch.setattr(floor, "timed", fake)
    found = floor.measure(committed, repeat=3)
    medians = found["medians"]
    assert isinstance(medians, dict)
    assert [medians[k]["seconds"] for k in ("startup", "git_stat_threads", "git_stat_one_thread", "walk", "together")] == [
        0.2,
        1.0,
        2.0,
        0.6,
        1.3,
    ]
    assert medians["together"]["cpu"] == 2.6  # both processes' CPU
    assert found["floor_s"] == 1.5 and found["left_for_the_catalog_s"] == 0.5


def test_the_script_prints_the_floor_table(committed: Path) -> None:
    """As docs/benchmark.md runs it: one repeat, markdown out."""
    command = [sys.executable, str(REPO / "bench" / "floor.py"), "--workdir", str(committed), "--repeat", "1", "--markdown"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if re.match(r"^\| .+ \| [0-9.]+ \| [0-9.]+ \|$", line)]
    assert len(rows) == 5
    assert re.search(r"Floor \(startup \+ both at once\): \*\*[0-9.]+ s\*\*", proc.stdout)
