"""The console script ends without freeing its heap (``cli.fast_exit``), and loses nothing by
it: what was printed (to a pipe: block-buffered), what ``atexit`` handlers do, the exit code
``sys.exit`` would give, a running thread's work; a command's result is held to the end."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from generator.cli import fast_exit
from helpers.repo import REPO


def _python(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, its output to pipes (block-buffered)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=cwd or REPO, timeout=120, check=False
    )


def test_leave_flushes_runs_the_atexit_handlers_and_keeps_the_code() -> None:
    done = _python(
        """
        import atexit, sys
        from generator.cli import fast_exit
        atexit.register(lambda: print("handler ran"))
        print("printed, not flushed")
        print("to stderr", file=sys.stderr)
        fast_exit.leave(3)
        print("never")
        """
    )
    assert done.returncode == 3
    assert done.stdout.splitlines() == ["printed, not flushed", "handler ran"]
    assert done.stderr == "to stderr\n"


def test_leave_ends_as_sys_exit_would() -> None:
    for code, status, err in (("None", 0, ""), ("0", 0, ""), ("2", 2, ""), ("'a message'", 1, "a message\n")):
        done = _python(f"from generator.cli import fast_exit; fast_exit.leave({code})")
        assert (done.returncode, done.stderr) == (status, err), code
        plain = _python(f"import sys; sys.exit({code})")
        assert (plain.returncode, plain.stderr) == (status, err), code  # the same as the ordinary exit


def test_a_running_thread_is_waited_for() -> None:
    done = _python(
        """
        import threading, time
        from generator.cli import fast_exit
        def late():
            time.sleep(0.5)
            print("the thread finished")
        threading.Thread(target=late).start()
        fast_exit.leave(0)
        """
    )
    assert done.returncode == 0 and done.stdout == "the thread finished\n"


def test_keep_holds_only_in_the_console_script() -> None:
    held = len(fast_exit._KEPT)
    fast_exit.keep(object())  # a test's process (main.main): nothing held
    assert len(fast_exit._KEPT) == held
    done = _python(
        """
        import gc, weakref
        from generator.cli import fast_exit
        class Result: pass
        result = Result()
        alive = weakref.ref(result)
        fast_exit.enable()
        fast_exit.keep(result)
        del result
        gc.collect()
        print(alive() is not None)
        """
    )
    assert done.stdout == "True\n"


def test_the_console_script_prints_everything_and_exits_as_before(tmp_path: Path) -> None:
    """``entry`` end to end in a scratch copy: a check's whole JSON report through a pipe,
    then a catalog error's lines and exit 2."""
    from helpers.repo import copy_repo

    repo = copy_repo(tmp_path / "repo")
    entry = "import sys; from generator.cli.main import entry; sys.argv = ['companyos', *sys.argv[1:]]; entry()"
    run = [sys.executable, "-c", entry]
    ok = subprocess.run([*run, "check", "--format", "json"], capture_output=True, text=True, cwd=repo, timeout=600, check=False)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["unchanged"] > 100
    (repo / "tenants/acme.yaml").write_text("tier: [unclosed\n")
    bad = subprocess.run([*run, "render"], capture_output=True, text=True, cwd=repo, timeout=600, check=False)
    assert bad.returncode == 2
    assert "tenants/acme.yaml:" in bad.stderr and bad.stderr.rstrip().endswith("nothing was written.")
