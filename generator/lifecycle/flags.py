"""``companyos flag``: write the flag switch (``ops/flags.py``) and re-render in one transaction.

The layer file and every rendered file it changes are written together or not at all
(``lifecycle/transaction.py``); with ``--branch`` the change is committed on a new branch
for review, like a promotion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from generator import git
from generator.catalog.folders import find_root
from generator.errors import UsageError
from generator.lifecycle.transaction import Progress, git_state, refusal, render_tracked, transaction
from generator.ops import flags as ops_flags
from generator.output import tree


@dataclass
class FlagResult:
    change: ops_flags.FlagChange
    files: list[str]
    branch: str | None = None
    commit: str | None = None


def switch(
    root: Path | None,
    service: str,
    flag: str,
    env: str,
    *,
    tenant: str | None = None,
    variant: str | None = None,
    kill: bool = False,
    branch: str | None = None,
    allow_dirty: bool = False,
    progress: Progress | None = None,
) -> FlagResult:
    """Apply :func:`ops.flags.plan`, re-render, and (``branch``) commit exactly that change."""
    root = find_root(root or Path.cwd())
    if not (root / "catalog" / "platform.yaml").is_file():
        raise UsageError(f"{root} is not a CompanyOS repository (no catalog/platform.yaml)")
    change = ops_flags.plan(root, service, flag, env, tenant=tenant, variant=variant, kill=kill)
    repo, problems = git_state(root, commit=branch is not None, allow_dirty=allow_dirty or branch is None, branch=branch)
    if problems:
        raise refusal(f"cannot switch flag '{flag}' of '{service}'", problems)
    result = FlagResult(change, [])
    if change.unchanged:
        return result
    with transaction(root, progress) as tx:
        tx.write(change.path, change.text.encode("utf-8"))
        render_tracked(root, tx)
        result.files = [rel for rel in tx.changed() if not rel.endswith(tree.TMP_SUFFIX)]
        if branch is not None and repo is not None:
            with git.deferred_signals():
                sha = git.commit_paths_on_new_branch(repo, root, branch, result.files, _message(change))
                tx.keep()
                result.branch, result.commit = branch, sha
                if progress is not None:
                    progress.committed = f"the flag change is commit {sha[:12]} on branch {branch} (checked out)"
    return result


def _message(c: ops_flags.FlagChange) -> str:
    what = ", ".join(f"{k}={v}" for k, v in c.values.items())
    where = f"tenant {c.tenant} in {c.env}" if c.tenant else c.env
    return f"Flag {c.service}/{c.flag}: {what} ({where})\n\nServed to: {', '.join(c.affected) or 'no change'}\n"
