"""Issue 19's incremental figures at a large fleet, as the console script runs each command:
this checkout's code and other revisions' in turn, on one tree.

docs/benchmark.md's 10,000 x 3 rows come from here. The tree is built once in ``--workdir``
(``run.make_catalog``'s synthetic catalog, rendered cold and committed: ~10 minutes and
5.4 GB at 10,000 tenants) and kept. Each round then times, every revision in turn:

* after its own ``render``: ``render`` after one tenant's file changed (``run.EDITED``'s
  owner), then ``render`` again (the no-op after an edit) and ``check --base HEAD`` on that
  working tree;
* the edits committed, after its own ``render`` (which records git's proof): the no-op
  ``render`` of a git-proven tree, CI's ``check --base HEAD~1 --committed`` and ``lint --base
  HEAD~1 --format matrix``.

Every revision runs with the same code digest (``units.code_digest`` pinned to the tree's),
so none takes another's unit manifests for a generator upgrade; only the edited tenant
renders, and each revision's modules are compiled first. Wall time is ``perf_counter`` around
the process; peak RSS is its largest process (``os.wait4``). A speed comparison holds only within one run: the VM drifts by tens of
percent within the hour, which is why the revisions alternate.

    python bench/scale.py --workdir /dev/shm/p10k --tenants 10000 --markdown
    python bench/scale.py --workdir /dev/shm/p10k --tenants 10000 --against 78d066f --repeat 3
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import run

REPO = Path(__file__).resolve().parents[1]
#: Where the built tree keeps the code digest every revision is pinned to (git-ignored there).
DIGEST_FILE = ".bench-code-digest"
#: Runs ``companyos`` from the checkout ``BENCH_CODE`` with ``BENCH_DIGEST`` as its code digest,
#: pinned when ``generator.output.units`` is first imported: importing it here would load the
#: render's code, which a no-op never loads (``checkcache.as_last_verified``).
SHIM = """\
import importlib.machinery, os, sys
sys.path.insert(0, os.environ["BENCH_CODE"])
digest = os.environ["BENCH_DIGEST"]

class Pin:
    def find_spec(self, name, path, target=None):
        if name != "generator.output.units":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            module.code_digest = lambda: digest
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Pin())
from generator.cli.main import entry
sys.argv[0] = "companyos"
entry()
"""


@dataclass(frozen=True)
class Revision:
    label: str
    code: Path


@dataclass
class Timing:
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)


class BenchFailed(RuntimeError):
    """A command exited non-zero: its figures would be of another run."""


def companyos(revision: Revision, root: Path, digest: str, *args: str) -> tuple[float, float]:
    """Run ``companyos *args`` in ``root`` with ``revision``'s code: (seconds, peak RSS MB of
    its largest process)."""
    env = {**os.environ, "BENCH_CODE": str(revision.code), "BENCH_DIGEST": digest}
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", SHIM, *args], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise BenchFailed(f"{revision.label}: companyos {' '.join(args)} exited {proc.returncode}: {err.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def build(root: Path, tenants: int, revision: Revision) -> str:
    """The tree at ``root`` with ``tenants`` tenants, built (catalog, cold render, commit) unless
    it is there; its pinned code digest."""
    digest_path = root / DIGEST_FILE
    if (root / "tenants").is_dir():
        found = len(list((root / "tenants").glob("*.yaml")))
        if found != tenants or not digest_path.is_file():
            raise SystemExit(f"{root} holds {found} tenants, or was not built by this script: asked for {tenants}")
        return digest_path.read_text().strip()
    root.mkdir(parents=True, exist_ok=True)
    run.make_catalog(root, tenants)
    sys.path.insert(0, str(revision.code))
    from generator.output import units

    digest = units.code_digest()
    digest_path.write_text(digest + "\n")
    seconds, rss = companyos(revision, root, digest, "render", "--quiet")
    print(f"cold render of {tenants} tenants: {seconds:.1f} s, {rss:.0f} MB", file=sys.stderr)
    run._commit(root, "base")
    with open(root / ".git" / "info" / "exclude", "a") as fh:
        fh.write(f"/{DIGEST_FILE}\n")
    return digest


def settle(root: Path, digest: str, revision: Revision) -> None:
    """Whatever an interrupted run left rendered and committed, and git's proof recorded."""
    if _git(root, "status", "--porcelain", "--untracked-files=no"):
        companyos(revision, root, digest, "render", "--quiet")
        run._commit(root, "bench: settle")
    companyos(revision, root, digest, "render", "--quiet")


def rounds(root: Path, digest: str, revisions: list[Revision], repeat: int) -> dict[str, dict[str, Timing]]:
    """``repeat`` rounds of the scenarios (module docstring), each revision running each of the
    two sequences in turn from the state the one before left. A sequence starts with that
    revision's own render: the verified-clean record is keyed by the code, so the no-op
    after another revision's render would verify everything again."""
    figures: dict[str, dict[str, Timing]] = {}

    def timed(scenario: str, revision: Revision, *args: str) -> None:
        seconds, rss = companyos(revision, root, digest, *args)
        timing = figures.setdefault(scenario, {}).setdefault(revision.label, Timing())
        timing.seconds.append(seconds)
        timing.rss_mb.append(rss)

    for _ in range(repeat):
        settle(root, digest, revisions[0])
        for revision in revisions:
            companyos(revision, root, digest, "render", "--quiet")  # its own record and proof
            run._edit_one_tenant(root)
            timed("one-tenant edit: render", revision, "render", "--quiet")
            timed("no-op render after the edit", revision, "render", "--quiet")
            timed("check --base HEAD (the working tree)", revision, "check", "--base", "HEAD")
        run._commit(root, "bench: edit")
        for revision in revisions:
            companyos(revision, root, digest, "render", "--quiet")  # records git's proof of the commit
            timed("no-op render, committed tree", revision, "render", "--quiet")
            timed("check --base HEAD~1 --committed (CI's)", revision, "check", "--base", "HEAD~1", "--committed")
            timed("lint --base HEAD~1 --format matrix", revision, "lint", "--base", "HEAD~1", "--format", "matrix")
    return figures


@contextlib.contextmanager
def checkouts(against: list[str]) -> Iterator[list[Revision]]:
    """This checkout, and a ``git worktree`` of each of ``against`` (removed afterwards)."""
    made: list[Path] = []
    revisions = [Revision("this checkout", REPO)]
    try:
        for ref in against:
            folder = Path(tempfile.mkdtemp(prefix="companyos-bench-code-"))
            folder.rmdir()
            _git(REPO, "worktree", "add", "--detach", "-q", str(folder), ref)
            made.append(folder)
            revisions.append(Revision(ref, folder))
        for revision in revisions:
            # compiled once, like an installed package: with PYTHONDONTWRITEBYTECODE set (as on
            # this VM) a fresh worktree compiled every module on every run, ~0.15 s per command
            compileall.compile_dir(revision.code / "generator", quiet=1)
        yield revisions
    finally:
        for folder in made:
            _git(REPO, "worktree", "remove", "--force", str(folder))


def markdown(figures: dict[str, dict[str, Timing]]) -> str:
    lines = ["| command | code | runs (s) | median s | peak RSS MB |", "|---|---|---|---|---|"]
    for scenario, by_revision in figures.items():
        for label, timing in by_revision.items():
            runs = " / ".join(f"{s:.2f}" for s in timing.seconds)
            lines.append(f"| {scenario} | {label} | {runs} | **{statistics.median(timing.seconds):.2f}** | {max(timing.rss_mb):.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="the tree (built there once, then reused)")
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--against", nargs="*", default=[], help="other revisions to time in turn (git refs)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with checkouts(args.against) as revisions:
        digest = build(args.workdir, args.tenants, revisions[0])
        figures = rounds(args.workdir, digest, revisions, args.repeat)
    if args.markdown:
        print(markdown(figures))
    else:
        print(json.dumps({s: {label: vars(t) for label, t in by.items()} for s, by in figures.items()}, indent=1))


if __name__ == "__main__":
    main()
