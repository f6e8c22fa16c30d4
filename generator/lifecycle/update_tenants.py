"""``companyos update-tenants``: three-way merge template changes into tenant files.

copier versions a template by the commits of a git repository whose root is the template,
so an update builds two throw-away repositories (template at the tenant's recorded commit
and at HEAD; the tenant file and its answers) and runs copier's real merge there. See
docs/tenants.md.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import git
from generator.catalog.folders import find_root
from generator.catalog.load import linked_part
from generator.errors import CatalogErrors, UsageError
from generator.lifecycle.request import (
    TEMPLATE_DIR,
    TENANTS_DIR,
    answers_path,
    tenant_path,
)
from generator.lifecycle.template import CONFLICT_MARKERS, answers_text, read_answers
from generator.lifecycle.transaction import FileTransaction, Progress, render_tracked, transaction
from generator.output import tree


@dataclass
class TenantUpdate:
    name: str
    #: updated | up-to-date | conflict | skipped | error
    status: str
    detail: str = ""


@dataclass
class UpdateResult:
    tenants: list[TenantUpdate]
    report: tree.WriteReport | None = None

    @property
    def conflicts(self) -> list[TenantUpdate]:
        return [t for t in self.tenants if t.status == "conflict"]

    @property
    def errors(self) -> list[TenantUpdate]:
        return [t for t in self.tenants if t.status == "error"]


def update_tenants(root: Path | None, names: Sequence[str] = (), *, render: bool = True, progress: Progress | None = None) -> UpdateResult:
    """Merge the changes of templates/tenant/ since each tenant's recorded version into its
    file (three-way, through copier), keeping hand edits. Conflicts are left inline in the
    file; the render runs only when none remain."""
    root = find_root(root or Path.cwd())
    needs_history = "update-tenants needs the repository's git history (the template version of each tenant is a commit)"
    repo = git.require_repo(root, needs_history)
    head = git.head_commit(repo)
    if head is None:
        raise UsageError(needs_history)
    dirty = git.dirty_paths(repo, root, [TENANTS_DIR, TEMPLATE_DIR])
    if dirty:
        raise UsageError("uncommitted changes in " + ", ".join(dirty[:8]) + "; commit them first so the update is one reviewable diff")
    template_git = git.git_path(repo, root, TEMPLATE_DIR)
    new_tree = git.tree_at(repo, head, template_git)
    if new_tree is None:
        raise UsageError(f"{TEMPLATE_DIR} is not committed")
    available = sorted(p.stem for p in (root / TENANTS_DIR).glob("*.yaml"))
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UsageError(f"unknown tenant {', '.join(unknown)} (known: {', '.join(available)})")
    result = UpdateResult([])
    scratch: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="companyos-update-") as tmp, transaction(root, progress) as tx:
        for name in names or available:
            result.tenants.append(_update_one(root, repo, tx, name, head, template_git, new_tree, Path(tmp), scratch))
        updated = [t.name for t in result.tenants if t.status == "updated"]
        if render and not result.conflicts and updated:
            try:
                _, result.report = render_tracked(root, tx)
            except CatalogErrors as exc:  # the merged files are rolled back: say what they said
                raise UsageError(
                    f"the template change, merged into {', '.join(updated)}, breaks the catalog:\n"
                    + "\n".join(f"  {e}" for e in exc.errors)
                    + f"\nfix {TEMPLATE_DIR} and commit; nothing was written"
                ) from exc
    return result


def _update_one(
    root: Path, repo: Any, tx: FileTransaction, name: str, head: str, template_git: str, new_tree: Any, tmp: Path, scratch: dict[str, Path]
) -> TenantUpdate:
    for rel in (tenant_path(name), answers_path(name)):
        link = linked_part(root, rel)
        if link is not None:  # never read through (or replace) a link: it may point outside the repository
            return TenantUpdate(name, "error", f"{rel}:1:1: '{link}' is a symbolic link; catalog files must be regular files")
    answers_file = root / answers_path(name)
    if not answers_file.is_file():
        return TenantUpdate(name, "skipped", f"no {answers_path(name)}: not scaffolded from the template")
    answers = read_answers(answers_file)
    old = answers.get("_commit")
    if not old:
        return TenantUpdate(name, "error", f"{answers_path(name)} records no template version (_commit)")
    old_tree = git.tree_at(repo, str(old), template_git)
    if old_tree is None:
        return TenantUpdate(
            name, "error", f"template version {old} is not in this clone's history (a shallow clone? fetch the full history)"
        )
    if old_tree.hexsha == new_tree.hexsha:  # keep the recorded commit: no churn in the answers
        return TenantUpdate(name, "up-to-date")
    if old_tree.hexsha not in scratch:
        scratch[old_tree.hexsha] = _template_repo(tmp / f"template-{len(scratch)}", old_tree, new_tree)
    current = (root / tenant_path(name)).read_bytes()
    merged, new_answers = _copier_update(scratch[old_tree.hexsha], tmp / f"tenant-{name}", name, current, answers)
    if merged != current:
        tx.write(tenant_path(name), merged)
    tx.write(answers_path(name), answers_text(new_answers, head))
    if any(line.rstrip() in CONFLICT_MARKERS for line in merged.splitlines()):
        return TenantUpdate(name, "conflict", f"{tenant_path(name)} has conflict markers; resolve them, then run `companyos render`")
    return TenantUpdate(name, "updated" if merged != current else "up-to-date")


def _template_repo(path: Path, old_tree: Any, new_tree: Any) -> Path:
    """A repository whose tag 1.0.0 is the template as the tenant last saw it and 2.0.0
    is the template at HEAD: the versioned template copier's update needs."""
    repo = git.scratch_repo(path)
    git.export_tree(old_tree, path)
    git.commit_all(repo, "template as last applied")
    repo.create_tag("1.0.0")
    for child in path.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    git.export_tree(new_tree, path)
    git.commit_all(repo, "template at HEAD")
    repo.create_tag("2.0.0")
    return path


def _copier_update(template: Path, dst: Path, name: str, current: bytes, answers: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """copier's three-way update of one tenant in a throw-away repository."""
    from copier import run_update
    from copier.errors import CopierError

    repo = git.scratch_repo(dst)
    (dst / TENANTS_DIR).mkdir(parents=True, exist_ok=True)
    (dst / tenant_path(name)).write_bytes(current)
    (dst / answers_path(name)).parent.mkdir(parents=True, exist_ok=True)
    (dst / answers_path(name)).write_bytes(answers_text(answers, "1.0.0", src_path=str(template)))
    git.commit_all(repo, "tenant as committed")
    try:
        run_update(
            dst,
            vcs_ref="2.0.0",
            answers_file=answers_path(name),
            defaults=True,
            overwrite=True,
            unsafe=False,
            skip_tasks=True,
            quiet=True,
            conflict="inline",
            skip_answered=True,
        )
    except KeyboardInterrupt:
        raise
    except (CopierError, ValueError) as exc:
        raise UsageError(f"copier could not update tenant '{name}': {exc}") from exc
    new_answers = read_answers(dst / answers_path(name))
    return (dst / tenant_path(name)).read_bytes(), {k: v for k, v in new_answers.items() if not k.startswith("_")}
