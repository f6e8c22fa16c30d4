"""``companyos promote``: write a promotion (``ops/promote.py``) all-or-nothing.

The service's catalog file and the re-rendered tree change together in one transaction
(any catalog error found by the render restores every file); with ``--branch`` the change
is committed on a new branch for the pull request, as ``new-tenant`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from generator import git
from generator.catalog.folders import find_root
from generator.errors import UsageError
from generator.lifecycle.transaction import Progress, git_state, refusal, render_tracked, transaction
from generator.ops import promote as ops_promote
from generator.output import tree


@dataclass
class PromoteResult:
    promotion: ops_promote.Promotion
    files: list[str]
    branch: str | None = None
    commit: str | None = None


def promote(
    root: Path | None,
    service: str,
    to: str,
    *,
    from_env: str | None = None,
    digest: str | None = None,
    tag: str | None = None,
    branch: str | None = None,
    allow_dirty: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> PromoteResult:
    """Move ``to``'s release of ``service`` (see :func:`ops.promote.plan`), re-render, and
    (``branch``) commit exactly that change on a new branch."""
    root = find_root(root or Path.cwd())
    if not (root / "catalog" / "platform.yaml").is_file():
        raise UsageError(f"{root} is not a CompanyOS repository (no catalog/platform.yaml)")
    planned = ops_promote.plan(root, service, to, from_env=from_env, digest=digest, tag=tag, now=now)
    repo, problems = git_state(root, commit=branch is not None, allow_dirty=allow_dirty or branch is None, branch=branch)
    if problems:
        raise refusal(f"cannot promote '{service}' to {to}", problems)
    result = PromoteResult(planned, [])
    if planned.unchanged:
        return result
    with transaction(root, progress) as tx:
        tx.write(planned.path, planned.text.encode("utf-8"))
        render_tracked(root, tx)
        result.files = [rel for rel in tx.changed() if not rel.endswith(tree.TMP_SUFFIX)]
        if branch is not None and repo is not None:
            with git.deferred_signals():
                sha = git.commit_paths_on_new_branch(repo, root, branch, result.files, _message(planned))
                tx.keep()
                result.branch, result.commit = branch, sha
                if progress is not None:
                    progress.committed = f"the promotion is commit {sha[:12]} on branch {branch} (checked out)"
    return result


def _message(p: ops_promote.Promotion) -> str:
    origin = f"from {p.source_env}" if p.source_env else "from the release workflow"
    return f"Promote {p.service} {p.tag} to {p.target_env}\n\n{origin}: {p.digest}\n"
