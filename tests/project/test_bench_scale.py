"""``bench/scale.py``, the source of docs/benchmark.md's 10,000-tenant rows, runs: a small
tree built, each scenario timed for this checkout and a worktree of HEAD in turn, the
worktree removed, and the tree left committed with only the edited tenant re-rendered."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.repo import REPO

SCENARIOS = 6


@pytest.mark.slow
def test_the_scale_bench_times_every_scenario_for_each_revision(tmp_path: Path) -> None:
    before = subprocess.run(["git", "worktree", "list"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    tree = tmp_path / "tree"
    command = [sys.executable, str(REPO / "bench" / "scale.py"), "--workdir", str(tree), "--tenants", "3", "--repeat", "1"]
    proc = subprocess.run([*command, "--against", "HEAD", "--markdown"], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = [
        line
        for line in proc.stdout.splitlines()
        if re.match(r"\| [a-z].* \| (this checkout|HEAD) \| [0-9.]+ \| \*\*[0-9.]+\*\* \| [0-9]+ \|$", line)
    ]
    assert len(rows) == 2 * SCENARIOS, proc.stdout
    assert subprocess.run(["git", "worktree", "list"], cwd=REPO, capture_output=True, text=True, check=True).stdout == before
    log = subprocess.run(["git", "log", "--format=%s"], cwd=tree, capture_output=True, text=True, check=True).stdout.split("\n")
    assert log[:2] == ["bench: edit", "base"]
    # the edit commit changed the edited tenant's own files and nothing else
    changed = subprocess.run(["git", "diff", "--name-only", "HEAD~1"], cwd=tree, capture_output=True, text=True, check=True).stdout.split()
    assert "tenants/t00001.yaml" in changed and all("t00001" in path for path in changed), changed
    # a second run reuses the tree; asking for another size is refused
    again = subprocess.run([*command, "--markdown"], capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0 and "cold render" not in again.stderr, again.stderr
    other = subprocess.run([*command[:-4], "--tenants", "4"], capture_output=True, text=True, timeout=600, check=False)
    assert other.returncode != 0 and "holds 3 tenants" in other.stderr
