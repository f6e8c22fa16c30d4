"""The rough edges of issue 21 (item 6), each planted for real and seen handled.

* ``--base`` a shallow clone does not have: exit 2 with a hint to fetch, for every command
  that takes ``--base``;
* symbolic links anywhere the catalog is read (files, folders, templates): ``path:1:1`` errors;
* ``cost --format json`` is valid (strict) JSON whatever the numbers;
* every file-system error names its path;
* an unquoted account id keeps its leading zero in the hint;
* render workers end with their parent, even when the parent is killed with SIGKILL.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generator import git, pipeline
from generator.cli.main import describe_os_error
from generator.ops import cost
from helpers.repo import REPO, copy_repo, snapshot


def commit_all(root: Path, message: str) -> str:
    repo = git.scratch_repo(root) if not (root / ".git").exists() else __import__("git").Repo(root)
    repo.git.add("-A")
    repo.git.commit("-q", "--no-verify", "-m", message)
    return str(repo.head.commit.hexsha)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository (rendered, committed) with two commits: a second tenant edit on top."""
    root = copy_repo(tmp_path_factory.mktemp("history") / "repo")
    pipeline.render_to_disk(root)
    commit_all(root, "catalog")
    tenant = root / "tenants" / "hooli.yaml"
    tenant.write_text(tenant.read_text() + "# reviewed\n")
    pipeline.render_to_disk(root)  # the unit manifest records the tenant file's hash
    commit_all(root, "edit")
    return root


@pytest.fixture(scope="module")
def shallow(history: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("shallow") / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{history}", str(dest)], check=True)
    return dest


def no_traceback(err: str) -> None:
    assert "Traceback" not in err and "Error(" not in err, err


@pytest.mark.parametrize("command", ["check", "validate", "cost", "affected"])
def test_base_beyond_a_shallow_clone_is_exit_2_with_a_hint_to_fetch(shallow, companyos, command):
    res = companyos(command, "--base", "HEAD~1", cwd=shallow)
    assert res.code == 2, (res.code, res.out, res.err)
    no_traceback(res.err)
    assert "HEAD~1" in res.err and "shallow" in res.err
    assert "git fetch --deepen" in res.err and "git fetch --unshallow" in res.err


def test_base_that_is_in_the_shallow_history_still_works(shallow, companyos):
    res = companyos("check", "--base", "HEAD", cwd=shallow)
    assert res.code == 0, res.err


@pytest.mark.parametrize("ref", ["no-such-branch", "0123456789abcdef0123456789abcdef01234567", "HEAD~50", "HEAD^{tree}"])
def test_any_ref_not_in_the_history_is_exit_2_with_a_hint(history, companyos, ref):
    res = companyos("check", "--base", ref, cwd=history)
    assert res.code == 2, (res.code, res.err)
    no_traceback(res.err)
    assert repr(ref) in res.err and "fetch" in res.err


# --- symbolic links --------------------------------------------------------------------------


def errors_at(err: str) -> set[str]:
    """The ``path:line:col`` of every error line."""
    return {m.group(1) for m in re.finditer(r"^(\S+:\d+:\d+): ", err, re.M)}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


def test_symlinked_tenant_file_is_refused(repo, companyos, outside):
    target = outside / "hooli.yaml"
    shutil.move(repo / "tenants" / "hooli.yaml", target)
    (repo / "tenants" / "hooli.yaml").symlink_to(target)
    before = snapshot(repo)
    res = companyos("render", cwd=repo)
    assert res.code == 2, res.err
    assert "tenants/hooli.yaml:1:1" in errors_at(res.err)
    assert snapshot(repo) == before


def test_symlinked_tenants_folder_is_refused(repo, companyos, outside):
    shutil.move(repo / "tenants", outside / "tenants")
    (repo / "tenants").symlink_to(outside / "tenants")
    res = companyos("validate", cwd=repo)
    assert res.code == 2, res.err
    expected = {f"tenants/{p.name}:1:1" for p in (outside / "tenants").glob("*.yaml")}
    assert expected and expected <= errors_at(res.err)
    assert "'tenants' is a symbolic link" in res.err


def test_symlinked_catalog_subfolder_is_refused(repo, companyos, outside):
    shutil.move(repo / "catalog" / "services", outside / "services")
    (repo / "catalog" / "services").symlink_to(outside / "services")
    res = companyos("validate", cwd=repo)
    assert res.code == 2 and any(e.startswith("catalog/services/") for e in errors_at(res.err)), res.err


def test_symlinked_template_file_is_refused(repo, companyos, outside):
    template = next(p for p in sorted((repo / "templates").rglob("*.j2")) if "tenant" not in p.parts)
    rel = template.relative_to(repo).as_posix()
    target = outside / template.name
    shutil.move(template, target)
    template.symlink_to(target)
    res = companyos("check", cwd=repo)
    assert res.code == 2, res.err
    assert f"{rel}:1:1" in errors_at(res.err)


def test_symlinked_template_folder_is_refused(repo, companyos, outside):
    folder = next(p for p in sorted((repo / "templates").iterdir()) if p.is_dir() and p.name != "tenant")
    rel = folder.relative_to(repo).as_posix()
    shutil.move(folder, outside / folder.name)
    folder.symlink_to(outside / folder.name)
    res = companyos("validate", cwd=repo)
    assert res.code == 2, res.err
    assert f"{rel}:1:1" in errors_at(res.err)


def test_symlink_in_the_tenant_scaffold_is_refused_before_new_tenant_writes(repo, companyos, outside):
    copier = repo / "templates" / "tenant" / "copier.yml"
    shutil.move(copier, outside / "copier.yml")
    copier.symlink_to(outside / "copier.yml")
    before = snapshot(repo)
    res = companyos(
        "new-tenant",
        "foo",
        "--tier",
        "standard",
        "--owner",
        "a@example.com",
        "--cost-center",
        "CC-4242",
        "--no-input",
        "--no-commit",
        cwd=repo,
    )
    assert res.code == 2, res.err
    assert "templates/tenant/copier.yml:1:1" in errors_at(res.err)
    assert snapshot(repo) == before


# --- cost JSON ---------------------------------------------------------------------------------


def strict_json(text: str) -> object:
    def refuse(constant: str) -> object:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _set_prices(path: Path, price: str) -> None:
    """Every price in pricing.yaml (not the hours per month, the percentages or the usage assumptions)."""
    lines, in_usage, in_counts = [], False, False
    for line in path.read_text().splitlines():
        in_usage = in_usage or line.startswith("usage:")
        if line[:1].isalpha():  # a top-level key: database_instance_vcpus holds counts, not prices
            in_counts = line.startswith("database_instance_vcpus:")
        assumption = in_counts or line.startswith("hours_per_month") or "_percent:" in line  # discounts, utilization
        if not in_usage and not assumption and re.search(r":\s*[0-9.]+\s*$", line):
            line = re.sub(r":\s*[0-9.]+\s*$", f": {price}", line)
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("base_price", ["0", "5e-324"], ids=["zero", "denormal"])
def test_cost_json_is_strict_json_when_the_base_cost_is_zero_or_tiny(tmp_path, companyos, base_price):
    root = copy_repo(tmp_path / "repo")
    pricing = root / "catalog" / "pricing.yaml"
    original = pricing.read_text()
    _set_prices(pricing, base_price)
    commit_all(root, "free")
    pricing.write_text(original)
    res = companyos("cost", "--base", "HEAD", "--format", "json", cwd=root)
    assert res.code in (0, 1), res.err
    data = strict_json(res.out)
    assert isinstance(data, dict)
    rows = data["deployments"] + data["tenants"]
    assert rows and all(r["current"] is not None and r["current"] > 0 for r in rows)
    undefined = [r for r in rows if r["change_percent"] is None]
    assert undefined, "a rise from (almost) nothing has no finite percentage"
    assert all(r["undefined"].get("change_percent") for r in undefined), "null says why"


def test_rows_with_non_finite_numbers_serialise_as_null_with_a_reason():
    report = cost.compare([], None, None, 10.0)
    report.deployments.append(cost.Row("t", "dev", 1e-320, 10.0))
    report.deployments.append(cost.Row("t", "prod", float("inf"), float("inf")))
    report.tenants.append(cost.Row("t", None, 0.0, 10.0))
    text = json.dumps(report.as_dict(), allow_nan=False)
    data = strict_json(text)
    assert isinstance(data, dict)
    tiny, inf = data["deployments"]
    assert tiny["change_percent"] is None and "finite" in tiny["undefined"]["change_percent"]
    assert inf["current"] is None and inf["change"] is None and set(inf["undefined"]) >= {"base", "current"}
    assert "base cost is 0" in data["tenants"][0]["undefined"]["change_percent"]


def test_infinite_price_is_a_catalog_error_at_its_line(repo, companyos):
    pricing = repo / "catalog" / "pricing.yaml"
    text = pricing.read_text()
    pricing.write_text(text.replace("vcpu_hourly: 0.04456", "vcpu_hourly: .inf"))
    line = next(i for i, t in enumerate(pricing.read_text().splitlines(), 1) if t.startswith("vcpu_hourly"))
    res = companyos("cost", "--format", "json", cwd=repo)
    assert res.code == 2, res.err
    assert any(e.startswith(f"catalog/pricing.yaml:{line}:") for e in errors_at(res.err)), res.err


# --- file-system errors name their path ------------------------------------------------------


class _FullDisk:
    def __init__(self, real: object) -> None:
        self.real = real

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.real.close()  # type: ignore[attr-defined]

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_enospc_names_the_file_and_leaves_nothing(repo, companyos, monkeypatch):
    from generator.output import atomic

    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: _FullDisk(real_fdopen(fd, mode)))
    before = snapshot(repo)
    res = companyos(
        "new-tenant",
        "foo",
        "--tier",
        "standard",
        "--owner",
        "a@example.com",
        "--cost-center",
        "CC-4242",
        "--no-input",
        "--no-commit",
        cwd=repo,
    )
    assert res.code == 3, res.err
    assert "No space left on device" in res.err
    assert str(repo / "tenants" / "foo.yaml") in res.err, "the message names the file"
    assert snapshot(repo) == before
    assert not [p for p in repo.rglob("*") if p.name.endswith(".companyos-tmp")]


def test_every_os_error_message_names_its_paths():
    assert describe_os_error(FileExistsError(errno.EEXIST, "File exists", "a.tmp", None, "a")) == "a.tmp -> a: File exists"
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device", "x/y")) == "x/y: No space left on device"


def test_file_exists_where_a_folder_must_be_names_the_path(repo, companyos):
    """A file stands where new-tenant must create a folder (tenants/.copier-answers)."""
    answers = repo / "tenants" / ".copier-answers"
    shutil.rmtree(answers, ignore_errors=True)
    answers.write_text("not a folder\n")
    res = companyos(
        "new-tenant",
        "foo",
        "--tier",
        "standard",
        "--owner",
        "a@example.com",
        "--cost-center",
        "CC-4242",
        "--no-input",
        "--no-commit",
        cwd=repo,
    )
    assert res.code in (2, 3), res.err
    no_traceback(res.err)
    assert ".copier-answers" in res.err, res.err


# --- account ids -------------------------------------------------------------------------------


def test_unquoted_account_id_hint_keeps_the_leading_zero(repo, companyos):
    tenant = repo / "tenants" / "acme.yaml"
    text = tenant.read_text()
    quoted = re.search(r'dev: "(\d{12})"', text)
    assert quoted
    tenant.write_text(text.replace(quoted.group(0), "dev: 012345678901"))
    res = companyos("validate", cwd=repo)
    assert res.code == 2
    line = next(ln for ln in res.err.splitlines() if ln.startswith("tenants/acme.yaml:"))
    assert 'quote it: "012345678901"' in line, line


def test_account_option_hint_shows_the_lost_zero():
    from generator.lifecycle import request

    facts = request.CatalogFacts.of(pipeline.load(REPO))
    tier = sorted(facts.dedicated_tiers)[0]
    envs = tuple(sorted(facts.environments))
    req = request.complete(
        request.TenantRequest(
            "foo", tier=tier, owner="a@example.com", cost_center="CC-4242", environments=envs[:1], accounts={envs[0]: "12345678901"}
        ),
        facts,
    )
    problems = request.check_request(req, facts)
    assert any("'012345678901'" in p for p in problems), problems


# --- interrupts and worker processes ------------------------------------------------------------


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _big_catalog(tmp_path: Path, tenants: int) -> Path:
    """The benchmark's catalog with ``tenants`` tenants (enough deployments for the worker pool)."""
    spec = importlib.util.spec_from_file_location("bench_run", REPO / "bench" / "run.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    root = tmp_path / "big"
    bench.make_catalog(root, tenants)
    return root


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_render_workers_exit_when_the_parent_is_killed(tmp_path):
    root = _big_catalog(tmp_path, 200)
    env = {**os.environ, "COMPANYOS_JOBS": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from generator.cli import main; main()", "render", "--root", str(root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        workers: set[int] = set()
        while time.monotonic() < deadline and proc.poll() is None and len(workers) < 2:
            workers = _children(proc.pid)
            time.sleep(0.05)
        assert len(workers) >= 2, "the render started its worker pool"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        left = [w for w in workers if _alive(w)]
        assert not left, f"workers {left} outlived their parent"
    finally:
        for w in _children(proc.pid) | set():
            os.kill(w, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupting_a_parallel_render_is_one_line_and_no_worker_traceback(tmp_path, how):
    """Ctrl-C at a terminal (SIGINT to the whole process group) or SIGTERM to the parent (a
    cancelled CI job): exit 130, one line, no traceback from any worker, no worker left."""
    root = _big_catalog(tmp_path, 200)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from generator.cli import main; main()", "render", "--root", str(root)],
        env={**os.environ, "COMPANYOS_JOBS": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    workers: set[int] = set()
    while time.monotonic() < deadline and proc.poll() is None and len(workers) < 2:
        workers = _children(proc.pid)
        time.sleep(0.05)
    assert len(workers) >= 2
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole process group
    else:
        os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)]


#: Runs ``companyos render`` with a signal planted at the worst moment for the pool: after it
#: forked its workers, before its manager thread (which tells them to stop) started.
_SIGNAL_AT_POOL_START = """
import sys
import concurrent.futures.process as process

real = process.ProcessPoolExecutor._start_executor_manager_thread

def interrupted(self):
    if self._executor_manager_thread is None and not self._safe_to_dynamically_spawn_children:
        self._launch_processes()
        raise KeyboardInterrupt
    return real(self)

process.ProcessPoolExecutor._start_executor_manager_thread = interrupted
sys.argv = ["companyos", "render", "--root", sys.argv[1]]
from generator.cli import main
main()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_signal_while_the_pool_starts_does_not_hang_the_exit(tmp_path):
    """Found at 10,000 tenants: `pkill` during the pool's start left a render that printed
    "interrupted" and then waited forever for workers nobody had told to stop (the
    interpreter joins its children on exit). The workers are killed, the exit is 130."""
    root = _big_catalog(tmp_path, 100)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SIGNAL_AT_POOL_START, str(root)],
        env={**os.environ, "COMPANYOS_JOBS": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        for worker in _children(proc.pid):
            os.kill(worker, signal.SIGKILL)
        proc.kill()
        pytest.fail("the interrupted render never exited: it waits for its workers")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and not _children(proc.pid)
    assert not (root / "rendered").exists(), "an interrupted cold render wrote something"
