"""The least any sound ``render`` of a rendered tree costs on this machine, before any catalog work.

Issue 19 asks a one-tenant edit's ``render`` to take <= 2 s at 10,000 tenants x 3. Whatever the
catalog work costs, every run must prove each output file holds the bytes its unit manifest
records (issue 19: "verify every other unit by hashing its files"), and that no file it does
not own appeared among them. Without a file-system monitor that is one ``lstat`` per file (git's
index comparison: ``git diff-files``) and one per folder (the folder walk, ``listing``), on top
of starting the interpreter and importing the command. This times exactly those, as ``render``
runs them:

* ``startup``: ``python -c "import generator.cli.main"``;
* ``git stat``: ``git diff-files --name-only`` over the outputs against the proven index copy
  (``committed.changed_later``'s call), on git's threads as ``render`` runs it, and on one;
* ``folder walk``: the walk's child process as ``render`` starts it (``walk_apart``), with the
  listing cache (the child only sends its listing: the tree and its caches are left as they
  were);
* ``both at once``: the git stat and the walk started together, as ``render`` starts them;
* ``floor``: startup + both at once, against the 2 s asked.

It also says how many folders a monitor would have to watch, against this machine's inotify
limit (``/proc/sys/fs/inotify/max_user_watches``, raised only by root).

    python bench/floor.py --workdir /work/p10k --repeat 5 --markdown

The tree is one ``bench/scale.py`` built (rendered and committed, then rendered again so git's
proof is recorded); any rendered tree in a git repository will do.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from generator.catalog.folders import OUTPUT_DIRS  # noqa: E402 (after the path: run from a checkout)
from generator.output.committed import PROOF_INDEX  # noqa: E402
from generator.output.listing import CACHE_DIR, list_folders  # noqa: E402
from generator.output.walk_apart import command as walk_command  # noqa: E402

#: What issue 19 asks of a one-tenant edit's ``render``.
ASKED_S = 2.0
_INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_watches")


@dataclass(frozen=True)
class Timed:
    """One run of some processes started together: wall seconds until the last ended, and
    the CPU seconds (user + system) they used."""

    seconds: float
    cpu: float


def timed(*commands: tuple[list[str], dict[str, str]], cwd: Path) -> Timed:
    """Start ``commands`` (argv, environment) at once in ``cwd``, wait for all; any failure
    fails the bench (a floor measured from a command that did not run is no floor)."""
    start = time.perf_counter()
    running = [subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for argv, env in commands]
    cpu = 0.0
    for proc in running:
        _, status, usage = os.wait4(proc.pid, 0)
        cpu += usage.ru_utime + usage.ru_stime
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            assert proc.stderr is not None
            raise SystemExit(f"{proc.args!r} exited {code}: {proc.stderr.read().decode()[-2000:]}")
    return Timed(time.perf_counter() - start, cpu)


def git_stat(root: Path, *, threads: bool) -> tuple[list[str], dict[str, str]]:
    """``git diff-files --name-only`` over the outputs, against the proven index copy when
    ``render`` recorded one (``committed.changed_later``), else the repository's index."""
    env = dict(os.environ)
    proof = root / CACHE_DIR / PROOF_INDEX
    if proof.is_file():
        env["GIT_INDEX_FILE"] = os.fspath(proof)
    settings = [] if threads else ["-c", "core.preloadIndex=false"]
    return ["git", *settings, "diff-files", "--name-only", "-z", "--", *OUTPUT_DIRS], env


def startup() -> tuple[list[str], dict[str, str]]:
    return [sys.executable, "-c", "import generator.cli.main"], {**os.environ, "PYTHONPATH": os.fspath(REPO)}


def walk(root: Path) -> tuple[list[str], dict[str, str]]:
    """The walk's child as ``render`` starts it (it sends the listing; the parent, not run
    here, would keep the cache's update)."""
    return walk_command(root, OUTPUT_DIRS), dict(os.environ)


def counts(root: Path) -> dict[str, int | None]:
    """Tracked output files, folders below the outputs, and the inotify limit (None: unknown)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--", *OUTPUT_DIRS], cwd=root, check=True, capture_output=True).stdout
    listing = list_folders(root, OUTPUT_DIRS, offer=False)
    try:
        limit: int | None = int(_INOTIFY_LIMIT.read_text())
    except (OSError, ValueError):
        limit = None
    return {"files": listed.count(b"\0"), "folders": len(listing.dirs), "inotify_watches": limit}


#: The steps timed, in the order each round runs them: what the table calls each, and the
#: processes it starts together (``timed``).
STEPS: dict[str, tuple[str, Callable[[Path], tuple[tuple[list[str], dict[str, str]], ...]]]] = {
    "startup": ("interpreter start and `import generator.cli.main`", lambda root: (startup(),)),
    "git_stat_threads": (
        "`git diff-files` over the outputs (git's threads, as `render` runs it)",
        lambda root: (git_stat(root, threads=True),),
    ),
    "git_stat_one_thread": ("the same on one thread (`core.preloadIndex=false`)", lambda root: (git_stat(root, threads=False),)),
    "walk": ("the folder walk's child, with the listing cache", lambda root: (walk(root),)),
    "together": (
        "the git stat and the walk started together, as `render` starts them",
        lambda root: (git_stat(root, threads=True), walk(root)),
    ),
}


def measure(root: Path, repeat: int) -> dict[str, object]:
    """Each step ``repeat`` times in turn (the VM drifts: no step gets a quiet minute to
    itself); medians, and the floor they add up to."""
    runs: dict[str, list[Timed]] = {name: [] for name in STEPS}
    for _ in range(repeat):
        for name, (_, commands) in STEPS.items():
            runs[name].append(timed(*commands(root), cwd=root))
    medians = {
        name: {"seconds": _median(t.seconds for t in timings), "cpu": _median(t.cpu for t in timings)} for name, timings in runs.items()
    }
    floor = medians["startup"]["seconds"] + medians["together"]["seconds"]
    return {
        **counts(root),
        "cores": os.cpu_count(),
        "runs": {name: [[round(t.seconds, 3), round(t.cpu, 3)] for t in timings] for name, timings in runs.items()},
        "medians": medians,
        "floor_s": round(floor, 3),
        "left_for_the_catalog_s": round(ASKED_S - floor, 3),
    }


def _median(values: Iterable[float]) -> float:
    return round(statistics.median(values), 3)


def markdown(found: dict[str, object]) -> str:
    medians = found["medians"]
    assert isinstance(medians, dict)
    lines = ["| step | wall s (median) | CPU s (median) |", "|---|---|---|"]
    lines += [f"| {label} | {medians[name]['seconds']:.2f} | {medians[name]['cpu']:.2f} |" for name, (label, _) in STEPS.items()]
    lines += [
        "",
        f"{found['files']:,} tracked output files, {found['folders']:,} folders, {found['cores']} cores; "
        f"inotify allows {found['inotify_watches']:,} watches."
        if isinstance(found["inotify_watches"], int)
        else f"{found['files']:,} tracked output files, {found['folders']:,} folders; inotify limit unknown.",
        f"Floor (startup + both at once): **{found['floor_s']:.2f} s**, leaving {found['left_for_the_catalog_s']:.2f} s "
        f"of the {ASKED_S:.0f} s asked for loading, resolving, judging, rendering and writing the catalog.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a rendered tree in a git repository (bench/scale.py's)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    found = measure(args.workdir.resolve(), args.repeat)
    print(markdown(found) if args.markdown else json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
