"""The CLI starts without the render's code, and a no-op ``render`` or cached ``check`` never
loads it (``checkcache.as_last_verified`` answers first): at 10,000 tenants that code was
~0.25 s of a ~2 s no-op. A command with work to do loads it and does the work."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from helpers.catalog_edit import new_owner
from helpers.gitrepo import rendered_and_committed
from helpers.repo import copy_repo

#: Modules only a command with work to do needs: the pipeline, the catalog's models, the
#: render and its targets, Jinja.
RENDER_CODE = ("generator.pipeline", "generator.catalog.spec", "generator.output.render", "generator.targets", "jinja2")


def _companyos(cwd: Path, *args: str, before: str = "") -> tuple[int, str, list[str]]:
    """``companyos *args`` in a fresh interpreter (as the console script runs it, through
    ``cli.main.main``), after ``before`` (code): (exit code, stdout, the modules of
    :data:`RENDER_CODE` it loaded)."""
    code = textwrap.dedent(before) + textwrap.dedent(
        f"""
        import json, sys
        from generator.cli.main import main
        sys.argv = ["companyos", *{list(args)!r}]
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code or 0
        print(json.dumps({{"code": code, "loaded": [m for m in {RENDER_CODE!r} if m in sys.modules]}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=300, check=False)
    *said, last = done.stdout.splitlines() or [""]
    try:
        answer = json.loads(last)
    except json.JSONDecodeError:
        raise AssertionError(done.stdout + done.stderr) from None
    return answer["code"], "\n".join(said), answer["loaded"]


def test_the_cli_starts_without_the_render_code() -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import sys, generator.cli.main; print([m for m in {RENDER_CODE!r} if m in sys.modules])"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_a_no_op_render_and_check_load_none_of_the_render_code_and_work_loads_it(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    code, said, loaded = _companyos(repo, "render")
    assert code == 0 and "nothing rendered" not in said and "generator.pipeline" in loaded  # no record yet: verified the long way
    code, said, loaded = _companyos(repo, "render")
    assert code == 0 and "(inputs and tree as last verified: nothing rendered)" in said
    assert loaded == []
    code, said, loaded = _companyos(repo, "check")
    assert code == 0 and said.startswith("ok: ") and loaded == []
    new_owner(repo, "acme", "someone-else@example.com")
    code, said, loaded = _companyos(repo, "check")  # the catalog moved: rendered and compared
    assert code == 1 and "changed" in said and "generator.pipeline" in loaded
    code, said, loaded = _companyos(repo, "render")
    assert code == 0 and "nothing rendered" not in said and " 0 written" not in said and "generator.pipeline" in loaded
    code, said, loaded = _companyos(repo, "check")
    assert code == 0 and said.startswith("ok: ") and loaded == []


#: Run before ``check --base``: git's proof of the working tree says whether the render's
#: code was loaded when it started.
_PROOF_STARTS = """
import sys
from generator.catalog import snapshot
started = snapshot._Committed.moved_later
def moved_later(self):
    print("git's proof starts; pipeline loaded:", "generator.pipeline" in sys.modules)
    return started(self)
snapshot._Committed.moved_later = moved_later
"""


def test_check_base_starts_gits_proof_before_it_loads_the_render_code(tmp_path: Path) -> None:
    """``git diff HEAD`` (the unit plan waits for it: ~1.7 s at 10,000 tenants) runs while the
    pipeline's modules load, not after (~0.2 s of ``check --base`` at 10,000 tenants)."""
    repo = rendered_and_committed(tmp_path / "repo")
    code, said, loaded = _companyos(repo, "check", "--base", "HEAD", before=_PROOF_STARTS)
    assert code == 0, said
    assert "git's proof starts; pipeline loaded: False" in said.splitlines() and "generator.pipeline" in loaded
