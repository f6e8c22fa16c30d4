"""Crash-consistent writes of the rendered tree, with faults injected at every step.

A catalog of a few hundred tenants is rendered once (the *old* tree); then the catalog
changes (tenants removed, added and edited) so that the next write creates, replaces and
prunes files and changes the manifest (the *new* tree). Every file-system operation of that
write is recorded once; each case then fails one of them -- disk full (half of the bytes
written first), permission refused, Ctrl-C, SIGKILL of the process -- and asserts, after
the NEXT command, that the tree is exactly the old or exactly the new one, byte for byte,
that no journal or temporary file is left, and that ``check`` tells the truth about it.

The "next command" is ``companyos check`` run in-process with the catalog's render
replaced by the one computed up front (rendering a few hundred tenants per case would take
minutes); recovery, locking and the comparison of the tree are the real ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from generator import pipeline
from generator.catalog.folders import MANIFEST_PATH
from generator.output import journal, listing, lock, tree, units
from generator.output.render import RenderResult
from helpers.repo import REPO, CliResult, snapshot

TENANTS = 200
REMOVED = [f"t{i:05d}" for i in range(1, 9)]
EDITED = [f"t{i:05d}" for i in range(20, 26)]
ADDED = [f"n{i:05d}" for i in range(5)]
STATE = lock.STATE_DIR + "/"
#: Caches written after the tree write (``output.listing``): not a step of the journal.
CACHE = listing.CACHE_DIR + "/"
CHILD_TIMEOUT = 120


# --- fault injection ----------------------------------------------------------------------


class Faults:
    """Wraps the os functions a write uses; counts every operation on a path under ``root``
    and, at operation number ``at``, fails it with ``action``:

    ``enospc``: a write puts half its bytes down, then "No space left on device"; any other
    operation fails before it happens. ``eperm``: "Operation not permitted", before.
    ``interrupt``: KeyboardInterrupt instead of the operation (Ctrl-C arriving just then).
    ``sigint``: the operation happens, then a real SIGINT to this process (``also`` lists
    further operation numbers that get one more, e.g. during the undo). ``sigkill``: as
    ``enospc`` for a write (half the bytes), then SIGKILL of this process.
    """

    def __init__(self, root: Path, at: int | None = None, action: str = "", also: tuple[int, ...] = ()) -> None:
        self.base = os.fspath(root) + os.sep
        self.at, self.action, self.also = at, action, also
        self.ops: list[tuple[str, str]] = []
        self.fds: dict[int, str] = {}
        self.real: dict[str, Callable[..., Any]] = {}

    def _rel(self, path: object) -> str | None:
        text = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else ""
        return text[len(self.base) :] if text.startswith(self.base) else None

    def _op(self, kind: str, rel: str, run: Callable[[], Any], half: Callable[[], Any] | None = None) -> Any:
        index = len(self.ops)
        self.ops.append((kind, rel))
        if index in self.also:
            result = run()
            os.kill(os.getpid(), signal.SIGINT)
            return result
        if index != self.at:
            return run()
        if self.action == "sigint":
            result = run()
            os.kill(os.getpid(), signal.SIGINT)
            return result
        if self.action in ("enospc", "sigkill") and half is not None:
            half()
        if self.action == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.action == "interrupt":
            raise KeyboardInterrupt
        code = errno.ENOSPC if self.action in ("enospc", "sigkill") else errno.EPERM
        raise OSError(code, os.strerror(code), self.base + rel)

    @contextmanager
    def active(self) -> Iterator[Faults]:
        real = self.real = {
            name: getattr(os, name) for name in ("open", "write", "close", "replace", "rename", "link", "unlink", "mkdir", "rmdir")
        }

        def open_(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
            fd: int = real["open"](path, flags, mode, **kw)
            rel = self._rel(path)
            if rel is not None and flags & (os.O_WRONLY | os.O_RDWR):
                self.fds[fd] = rel
            return fd

        def write(fd: int, data: Any) -> int:
            rel = self.fds.get(fd)
            if rel is None:
                return int(real["write"](fd, data))
            return int(self._op("write", rel, lambda: real["write"](fd, data), lambda: real["write"](fd, bytes(data)[: len(data) // 2])))

        def close(fd: int) -> None:
            self.fds.pop(fd, None)
            real["close"](fd)

        def two(name: str) -> Callable[..., Any]:
            def call(src: Any, dst: Any, **kw: Any) -> Any:
                rel = self._rel(dst)
                if rel is None:
                    return real[name](src, dst, **kw)
                return self._op(name, rel, lambda: real[name](src, dst, **kw))

            return call

        def one(name: str) -> Callable[..., Any]:
            def call(path: Any, *args: Any, **kw: Any) -> Any:
                rel = self._rel(path)
                if rel is None:
                    return real[name](path, *args, **kw)
                return self._op(name, rel, lambda: real[name](path, *args, **kw))

            return call

        patched = {"open": open_, "write": write, "close": close, "unlink": one("unlink"), "mkdir": one("mkdir"), "rmdir": one("rmdir")}
        patched.update({name: two(name) for name in ("replace", "rename", "link")})
        try:
            for name, fn in patched.items():
                setattr(os, name, fn)
            yield self
        finally:
            for name, fn in real.items():
                setattr(os, name, fn)


def phases(ops: list[tuple[str, str]]) -> list[str]:
    """The step of ``journal.apply`` each operation belongs to ("finish": after the commit)."""
    out: list[str] = []
    committed = False
    for kind, rel in ops:
        step = phase(kind, rel)
        if committed and step == "other" and kind == "unlink" and rel.endswith(journal.BACKUP_SUFFIX):
            step = "finish"
        committed = committed or step == "commit"
        out.append(step)
    return out


def _is_manifest(rel: str) -> bool:
    """The old single manifest or one of the unit manifests (output.units) that replaced it."""
    return rel == MANIFEST_PATH or rel.startswith(units.unit_path(units.GLOBAL).rsplit("/", 1)[0] + "/")


def phase(kind: str, rel: str) -> str:
    """Which step of ``journal.apply`` an operation belongs to, from the operation alone."""
    if rel.startswith(CACHE):
        return "cache"
    state = rel.startswith(STATE)
    if kind == "write":
        if state:
            return "journal"
        if rel.endswith(journal.TMP_SUFFIX) and _is_manifest(rel.removesuffix(journal.TMP_SUFFIX)):
            return "manifest-temp"
        return "temp" if rel.endswith(journal.TMP_SUFFIX) else "create"
    if kind == "mkdir":
        return "state" if state else "mkdir"
    if kind == "link":
        return "backup"
    if kind == "replace":
        if rel == journal.DONE_PATH:
            return "commit"
        if state:
            return "journal"
        return "manifest" if _is_manifest(rel) else "install"
    if kind == "rename":
        return "prune"
    return "other"


# --- the world: an old tree, a changed catalog, the new tree -----------------------------


@dataclass
class World:
    root: Path
    old: RenderResult
    new_build: pipeline.Build
    old_tree: dict[str, bytes]
    new_tree: dict[str, bytes]
    #: (kind, path) of every file-system operation of the write from old to new.
    ops: list[tuple[str, str]]
    #: The new render, pickled for child processes.
    new_pickle: Path
    #: "old" or "new" when the last test verified the tree byte for byte, else None.
    verified: str | None = None

    @property
    def new(self) -> RenderResult:
        return self.new_build.result

    def index(self, step: str, which: str = "first") -> int:
        steps = phases(self.ops)
        found = [i for i, name in enumerate(steps) if name == step]
        assert found, f"the write has no {step} step: {sorted(set(steps))}"
        return {"first": found[0], "middle": found[len(found) // 2], "last": found[-1]}[which]

    def outputs(self) -> dict[str, bytes]:
        """Every file of the output folders (temporaries and hand-written files included); a
        symbolic link is recorded as where it points, never followed."""
        out: dict[str, bytes] = {}
        for top in ("rendered", ".github"):
            for folder, dirs, files in os.walk(self.root / top):
                for name in (*files, *(d for d in dirs if os.path.islink(os.path.join(folder, d)))):
                    path = Path(folder, name)
                    rel = path.relative_to(self.root).as_posix()
                    out[rel] = b"symlink -> " + os.fsencode(os.readlink(path)) if path.is_symlink() else path.read_bytes()
        return out

    def reset(self) -> None:
        """Back to exactly the old tree (through a normal write: it prunes what is new).
        Skipped when the previous test left it verified old (reading the tree is the slow
        part of every case)."""
        verified, self.verified = self.verified, None
        if verified == "old":
            return
        if verified == "new" or self.outputs() != self.old_tree:
            report = tree.write(self.old, self.root)
            assert not report.kept, report.kept
        assert self.outputs() == self.old_tree
        assert not journal.pending(self.root)


def _mutate(root: Path) -> None:
    from generator.ops.allocate import allocate

    for name in REMOVED:
        (root / "tenants" / f"{name}.yaml").unlink()
    for name in EDITED:
        path = root / "tenants" / f"{name}.yaml"
        path.write_text(path.read_text().replace("owner: team-", "owner: new-team-"))
    template = (root / "tenants" / "t00041.yaml").read_text()
    for name in ADDED:
        (root / "tenants" / f"{name}.yaml").write_text(template.replace("t00041", name))
    allocate(root, write=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from run import make_catalog  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(REPO / "bench"))
    root = tmp_path_factory.mktemp("world") / "repo"
    root.mkdir()
    make_catalog(root, TENANTS)
    shutil.copytree(REPO / ".github", root / ".github")  # hand-written workflows beside ours
    old = pipeline.build(root).result
    tree.write(old, root)
    _mutate(root)
    new_build = pipeline.build(root)
    probe = World(root, old, new_build, {}, {}, [], root.parent / "new.pickle")
    probe.old_tree = probe.outputs()
    with Faults(root).active() as recording:
        tree.write(new_build.result, root)
    probe.new_tree = probe.outputs()
    probe.ops = recording.ops
    assert set(probe.new_tree) == set(new_build.result.files) | {p for p in probe.old_tree if p.startswith(".github/")} - {
        p for p in old.files if p not in new_build.result.files
    }
    probe.reset()
    probe.new_pickle.write_bytes(pickle.dumps(new_build.result))
    steps = set(phases(probe.ops))
    # "manifest" steps: replacing a unit manifest (output.units), written like any other file.
    assert {"journal", "mkdir", "create", "temp", "backup", "install", "prune", "manifest-temp", "manifest", "commit", "finish"} <= steps
    return probe


@pytest.fixture
def next_command(world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """``companyos <args>`` in-process, in the world's repository, with the render of its
    catalog taken from the world (everything else -- recovery, lock, comparing or writing
    the tree -- is the real code)."""
    from generator import cli

    def build(root: Path | None = None, *args: Any, **kwargs: Any) -> pipeline.Build:
        assert root is None or Path(root).resolve() == world.root.resolve()
        return dataclasses.replace(world.new_build, root=world.root)

    monkeypatch.setattr(pipeline, "build", build)

    def run(*args: str) -> CliResult:
        monkeypatch.chdir(world.root)
        monkeypatch.setattr(sys, "argv", ["companyos", *args])
        capsys.readouterr()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def assert_old_or_new(world: World, next_command: Callable[..., CliResult]) -> str:
    """Run ``check`` as the next command; the tree must then be exactly old or new, with no
    journal and no temporary file, and ``check`` must say which. Returns "old" or "new"."""
    result = next_command("check", "--full")
    now = world.outputs()
    assert now in (world.old_tree, world.new_tree), sorted(set(now) ^ set(world.old_tree))[:10]
    assert not journal.pending(world.root)
    assert not any(rel.endswith(journal.TMP_SUFFIX) for rel in now)
    if now == world.new_tree:
        assert result.code == 0 and "ok:" in result.out, result
        world.verified = "new"
        return "new"
    assert result.code == 1, result
    assert "leftover" not in result.out
    for name in ADDED:  # the new tenants' files are reported missing, the removed ones stale
        assert f"missing   rendered/helm/dev/{name}/" in result.out
    assert f"stale     rendered/helm/dev/{REMOVED[0]}/" in result.out
    world.verified = "old"
    return "old"


# --- in-process failures: every one rolls back completely --------------------------------

IN_PROCESS = [
    ("enospc", "journal", "first"),
    ("enospc", "mkdir", "middle"),
    ("enospc", "create", "first"),
    ("enospc", "create", "last"),
    ("enospc", "temp", "middle"),
    ("enospc", "manifest-temp", "first"),
    ("eperm", "backup", "first"),
    ("eperm", "install", "last"),
    ("eperm", "prune", "first"),
    ("eperm", "prune", "last"),
    ("eperm", "manifest", "first"),
    ("eperm", "commit", "first"),
    ("interrupt", "create", "middle"),
    ("interrupt", "install", "first"),
    ("interrupt", "manifest", "first"),
    ("sigint", "install", "middle"),
    ("sigint", "prune", "middle"),
]


@pytest.mark.parametrize(("action", "step", "which"), IN_PROCESS, ids=["-".join(case) for case in IN_PROCESS])
def test_a_failed_write_rolls_back_completely(
    world: World, next_command: Callable[..., CliResult], action: str, step: str, which: str
) -> None:
    world.reset()
    at = world.index(step, which)
    expected: type[BaseException] = KeyboardInterrupt if action in ("interrupt", "sigint") else OSError
    with Faults(world.root, at, action).active() as faults, pytest.raises(expected):
        tree.write(world.new, world.root)
    assert len(faults.ops) > at
    assert world.outputs() == world.old_tree  # immediately: nothing of the failed write is left
    assert not journal.pending(world.root)
    assert assert_old_or_new(world, next_command) == "old"


def test_a_failure_after_the_commit_point_leaves_the_new_tree(world: World, next_command: Callable[..., CliResult]) -> None:
    """Deleting the backups comes after the commit: the write has happened, and says so;
    what could not be deleted is finished by the next command."""
    world.reset()
    with Faults(world.root, world.index("finish", "middle"), "eperm").active():
        tree.write(world.new, world.root)
    assert assert_old_or_new(world, next_command) == "new"
    world.reset()
    with Faults(world.root, world.index("finish", "first"), "interrupt").active(), pytest.raises(KeyboardInterrupt):
        tree.write(world.new, world.root)
    assert journal.pending(world.root)  # committed, clean-up interrupted
    assert assert_old_or_new(world, next_command) == "new"


def test_a_second_ctrl_c_during_the_undo_does_not_stop_it(world: World, next_command: Callable[..., CliResult]) -> None:
    world.reset()
    at = world.index("install", "middle")
    with Faults(world.root, at, "sigint", also=(at + 2, at + 5, at + 9)).active() as faults, pytest.raises(KeyboardInterrupt):
        tree.write(world.new, world.root)
    assert len(faults.ops) > at + 9  # the undo ran on through the extra interrupts
    assert world.outputs() == world.old_tree
    assert assert_old_or_new(world, next_command) == "old"


# --- a process killed outright: the next command repairs ---------------------------------


def child_main(argv: list[str]) -> None:
    """Entry point of the child processes: ``root at action [also...]`` for one faulted write
    of the world's new render (``at`` -1: no fault)."""
    root, pickled, at, action, *also = argv
    result = pickle.loads(Path(pickled).read_bytes())
    faults = Faults(Path(root), int(at) if int(at) >= 0 else None, action, tuple(int(a) for a in also))
    try:
        with faults.active():
            tree.write(result, Path(root))
    except KeyboardInterrupt:
        sys.exit(130)
    except lock.LockHeld as exc:
        print(f"companyos: {exc}", file=sys.stderr)
        sys.exit(2)


CHILD = f"""
import importlib.util, sys
sys.path[:0] = [{str(REPO)!r}, {str(REPO / "tests")!r}]
spec = importlib.util.spec_from_file_location("crash_child", {__file__!r})
module = sys.modules["crash_child"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.child_main(sys.argv[1:])
"""


def child(world: World, at: int, action: str, *also: int, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, "-c", CHILD, str(world.root), str(world.new_pickle), str(at), action, *map(str, also)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


KILLED = [
    ("journal", "middle"),
    ("create", "middle"),
    ("temp", "last"),
    ("backup", "middle"),
    ("install", "middle"),
    ("prune", "middle"),
    ("manifest", "first"),
    ("commit", "first"),
    ("finish", "middle"),
]


@pytest.mark.parametrize(("step", "which"), KILLED, ids=["-".join(case) for case in KILLED])
def test_sigkill_mid_write_is_repaired_by_the_next_command(
    world: World, next_command: Callable[..., CliResult], step: str, which: str
) -> None:
    world.reset()
    at = world.index(step, which)
    proc = child(world, at, "sigkill")
    _, err = proc.communicate(timeout=CHILD_TIMEOUT)
    assert proc.returncode == -signal.SIGKILL, err
    assert journal.pending(world.root) or step == "journal"  # the journal outlives the process
    before = world.outputs()
    if step not in ("journal", "commit", "finish"):
        assert before not in (world.old_tree, world.new_tree)  # really a mixed tree
    outcome = assert_old_or_new(world, next_command)
    assert outcome == ("new" if step == "finish" else "old")


def test_sigkill_then_check_says_what_it_repaired(world: World, next_command: Callable[..., CliResult]) -> None:
    world.reset()
    proc = child(world, world.index("install", "middle"), "sigkill")
    proc.communicate(timeout=CHILD_TIMEOUT)
    assert (world.root / lock.LOCK_PATH).exists()  # the dead process's lock stays behind
    result = next_command("check", "--full")
    assert "found an interrupted write of process" in result.err and "undid it" in result.err, result.err
    assert result.code == 1 and world.outputs() == world.old_tree
    # and a render after that writes the new tree as if nothing had happened
    result = next_command("render")
    assert result.code == 0, result.err
    assert world.outputs() == world.new_tree
    assert next_command("check", "--full").code == 0


def test_real_sigint_in_a_child_exits_130_with_the_old_tree(world: World, next_command: Callable[..., CliResult]) -> None:
    world.reset()
    at = world.index("prune", "middle")
    proc = child(world, at, "sigint", at + 3)  # and a second Ctrl-C during the undo
    _, err = proc.communicate(timeout=CHILD_TIMEOUT)
    assert proc.returncode == 130, err
    assert world.outputs() == world.old_tree
    assert assert_old_or_new(world, next_command) == "old"


# --- one writer at a time -----------------------------------------------------------------


def test_two_concurrent_writes_never_mix(world: World, next_command: Callable[..., CliResult]) -> None:
    world.reset()
    env = {lock.WAIT_ENV: "0"}
    procs = [child(world, -1, "", env=env), child(world, -1, "", env=env)]
    outcomes = [(p.pid, p.wait(CHILD_TIMEOUT), p.stderr.read() if p.stderr else "") for p in procs]
    assert all(code in (0, 2) for _, code, _ in outcomes), outcomes
    assert any(code == 0 for _, code, _ in outcomes)
    for (_, code, err), (other, _, _) in zip(outcomes, reversed(outcomes), strict=True):
        if code == 2:
            assert f"held by process {other}" in err or "held by another process" in err, err
    assert assert_old_or_new(world, next_command) == "new"


def test_a_live_lock_makes_render_exit_2_naming_the_holder(
    world: World, next_command: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    world.reset()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from generator.output import lock\n"
            "with lock.hold(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)",
            str(world.root),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setenv(lock.WAIT_ENV, "0.3")
        result = next_command("render")
        assert result.code == 2, result
        assert f"held by process {holder.pid}" in result.err and "Traceback" not in result.err
        assert world.outputs() == world.old_tree  # truly nothing written
        result = next_command("check", "--full")  # check refuses to read a tree being written
        assert result.code == 2 and f"process {holder.pid}" in result.err
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock is stale and taken over
    assert (world.root / lock.LOCK_PATH).read_text().strip() == str(holder.pid)
    result = next_command("render")
    assert result.code == 0, result.err
    assert f"took over the stale lock {world.root / lock.LOCK_PATH} of process {holder.pid}" in result.err
    assert world.outputs() == world.new_tree
    assert not (world.root / lock.LOCK_PATH).exists()


def test_a_killed_render_worker_leaves_the_old_or_the_new_tree(world: World, next_command: Callable[..., CliResult]) -> None:
    """Kill one render worker of a real ``companyos render``: the render ends by itself (it
    must not wait forever for the lost work) and nothing is half-written."""
    world.reset()
    proc = subprocess.Popen(
        # --full: every unit goes to the workers (an incremental render of this change is small
        # enough to finish before a worker could be seen, or to run in-process)
        [str(Path(sys.executable).with_name("companyos")), "render", "--full", "--root", str(world.root)],
        env={**os.environ, "COMPANYOS_JOBS": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=True,
    )
    try:
        deadline = time.monotonic() + CHILD_TIMEOUT
        workers: list[int] = []
        while not workers and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            workers = _children(proc.pid)
        assert workers, "the render never started worker processes"
        with contextlib.suppress(ProcessLookupError):  # it had finished already: the render goes on
            os.kill(workers[-1], signal.SIGKILL)
        try:
            code = proc.wait(120)
        except subprocess.TimeoutExpired:
            pytest.fail("the render hung after one of its workers was killed")
        _, err = proc.communicate()
        assert code in (0, 3), err  # 0: the killed worker had finished its work already
        if code == 3:
            assert "render worker process died" in err and "Traceback" not in err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert assert_old_or_new(world, next_command) in ("old", "new")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found.extend(int(p) for p in text.split())
    return found


# --- prune only what is provably ours; never through a symbolic link ----------------------


def test_a_hand_edited_file_of_a_removed_tenant_is_kept(world: World, next_command: Callable[..., CliResult], tmp_path: Path) -> None:
    world.reset()
    victims = sorted(p for p in world.old.files if f"/{REMOVED[0]}/" in p)
    edited, linked = world.root / victims[0], world.root / victims[1]
    edited.unlink()
    edited.write_text("# my notes, not generated\n")  # a new inode: the old tree is untouched
    outside = tmp_path / "outside.yaml"
    outside.write_bytes(world.old.files[victims[1]])  # even bytes that hash right: a link is not ours
    linked.unlink()
    linked.symlink_to(outside)
    result = next_command("render")
    assert result.code == 0, result.err
    assert f"kept {victims[0]}: not pruned because it was edited since companyos wrote it" in result.err
    assert f"kept {victims[1]}: not pruned because it is a symbolic link" in result.err
    assert edited.read_text() == "# my notes, not generated\n"
    assert linked.is_symlink() and outside.read_bytes() == world.old.files[victims[1]]
    for rel in victims[2:]:  # the rest of the tenant's files hashed right and are gone
        assert not (world.root / rel).exists()
    now = world.outputs()
    assert {rel: data for rel, data in now.items() if rel not in victims[:2]} == world.new_tree
    check = next_command("check", "--full")  # the kept files are no longer ours: unmanaged
    assert check.code == 1 and f"unmanaged {victims[0]}" in check.out and f"unmanaged {victims[1]}" in check.out
    edited.unlink()
    linked.unlink()
    assert next_command("check", "--full").code == 0


def test_prune_hashes_against_the_previous_manifest(world: World) -> None:
    """A manifest entry whose hash does not match, or that has no hash, protects its file."""
    world.reset()
    unit = units.unit_path(f"tenant/{REMOVED[1]}")
    manifest = json.loads(world.old.files[unit])
    victims = sorted(p for p in world.old.files if f"/{REMOVED[1]}/" in p)
    manifest["files"][victims[0]]["sha256"] = hashlib.sha256(b"something else").hexdigest()
    del manifest["files"][victims[1]]["sha256"]
    path = world.root / unit
    path.unlink()
    path.write_text(json.dumps(manifest))
    report = tree.write(world.new, world.root)
    kept = {k.path: k.reason for k in report.kept}
    assert set(kept) == {victims[0], victims[1]}
    assert "sha256 differs" in kept[victims[0]] and "records no sha256" in kept[victims[1]]
    assert (world.root / victims[0]).read_bytes() == world.old.files[victims[0]]
    assert all(not (world.root / rel).exists() for rel in victims[2:])
    for rel in victims[:2]:
        (world.root / rel).unlink()


@pytest.mark.parametrize("where", ["manifest", "state-dir", "new-folder", "temp-name"])
def test_every_symbolic_link_is_refused_before_the_first_write(
    world: World, next_command: Callable[..., CliResult], tmp_path: Path, where: str
) -> None:
    world.reset()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine\n")
    planted = {
        "manifest": world.root / units.unit_path(units.GLOBAL),
        "state-dir": world.root / lock.STATE_DIR,
        "new-folder": world.root / f"rendered/helm/dev/{ADDED[0]}",
        # the temporary name of a file this render rewrites (an unchanged file is never written)
        "temp-name": world.root
        / (
            sorted(p for p in world.new_tree.keys() & world.old_tree.keys() - {MANIFEST_PATH} if world.new_tree[p] != world.old_tree[p])[0]
            + journal.TMP_SUFFIX
        ),
    }[where]
    saved = planted.read_bytes() if planted.is_file() else None
    if planted.is_dir():
        shutil.rmtree(planted)
    elif planted.exists():
        planted.unlink()
    planted.symlink_to(outside / "keep.txt" if where != "new-folder" and where != "state-dir" else outside)
    before = world.outputs()
    result = next_command("render")
    assert result.code == 2, result
    assert "symbolic link" in result.err and "Traceback" not in result.err
    assert world.outputs() == before  # truly nothing written
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"] and (outside / "keep.txt").read_text() == "mine\n"
    planted.unlink()
    if saved is not None:
        planted.write_bytes(saved)


# --- leftovers are reported by check and removed by render --------------------------------


def test_check_reports_leftover_temporary_files_and_render_removes_them(
    world: World, next_command: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    world.reset()
    assert next_command("render").code == 0
    assert next_command("check").code == 0  # fills the verified-clean cache
    for rel in ("rendered/helm/dev/t00030/api.yaml" + journal.TMP_SUFFIX, ".github/workflows/deploy.yml" + journal.TMP_SUFFIX):
        (world.root / rel).write_text("half a file")
        for args in (("check",), ("check", "--full")):  # the cached path must not say ok either
            result = next_command(*args)
            assert result.code == 1, (args, result)
            assert f"leftover  {rel}" in result.out and "temporary file of an interrupted write" in result.out
            assert "leftover temporary files" in result.err
    result = next_command("render")
    assert result.code == 0 and result.out.count("(a temporary file of an interrupted write)") == 2, result
    assert world.outputs() == world.new_tree
    assert next_command("check").code == 0


def test_temporary_files_and_the_state_folder_are_ignored_by_git() -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    paths = ["rendered/x.yaml" + journal.TMP_SUFFIX, ".github/workflows/y.yml" + journal.TMP_SUFFIX, lock.LOCK_PATH, journal.JOURNAL_PATH]
    result = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=REPO, capture_output=True, text=True)
    assert result.stdout.split() == paths


def test_the_sample_repository_renders_and_checks_through_the_journal(companyos: Callable[..., CliResult], repo: Path) -> None:
    """The real CLI end to end on the small sample: a change written through the journal
    leaves no state behind, and check agrees."""
    from helpers.catalog_edit import edit_yaml

    edit_yaml(repo / "catalog/services/api.yaml", lambda d: d["image"].__setitem__("tag", "9.9.9"))
    assert companyos("check", cwd=repo).code == 1
    result = companyos("render", cwd=repo)
    assert result.code == 0, result.err
    assert companyos("check", cwd=repo).code == 0
    assert sorted(p.name for p in (repo / lock.STATE_DIR).iterdir()) == []
    assert not [p for p in snapshot(repo) if p.endswith(journal.TMP_SUFFIX)]
