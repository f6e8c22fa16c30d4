"""``companyos new-tenant``: scaffold, allocate, render and commit a tenant on its own branch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from generator import git, pipeline
from generator.catalog import spec
from generator.catalog.folders import find_root
from generator.catalog.load import load_entry
from generator.errors import ErrorSink, UsageError
from generator.lifecycle.request import (
    TEMPLATE_DIR,
    CatalogFacts,
    TenantRequest,
    answers_data,
    answers_path,
    branch_name,
    check_name,
    check_request,
    complete,
    request_from_answers,
    tenant_path,
)
from generator.lifecycle.template import answers_text, render_template
from generator.lifecycle.transaction import (
    Progress,
    allocate_networks,
    git_state,
    refusal,
    render_tracked,
    transaction,
)
from generator.model import organization as orgmodel
from generator.model.resolve import Model
from generator.output import tree


@dataclass
class NewTenantResult:
    name: str
    tier: str
    created: list[str]
    allocations: list[str]
    report: tree.WriteReport
    #: Every file the change consists of (what the commit holds).
    files: list[str]
    tenant_outputs: list[str]
    branch: str | None = None
    commit: str | None = None
    #: Accounts the org root will create for the tenant (none when every id was given).
    vended: list[str] = field(default_factory=list)


def new_tenant(
    root: Path | None,
    request: TenantRequest,
    *,
    interactive: bool = False,
    commit: bool = True,
    allow_dirty: bool = False,
    progress: Progress | None = None,
) -> NewTenantResult:
    """Scaffold ``tenants/<name>.yaml``, allocate its networks, render, and (``commit``)
    create branch ``tenant/<name>`` holding exactly that change; switch to it.

    Ctrl-C leaves either nothing (every file restored, no branch) or the finished commit:
    the commit, the branch, the switch and "keep the files" are one critical section, and
    ``progress`` (when given) records which of the two happened."""
    root = find_root(root or Path.cwd())
    if not (root / "catalog" / "platform.yaml").is_file():
        raise UsageError(f"{root} is not a CompanyOS repository (no catalog/platform.yaml)")
    template = root / TEMPLATE_DIR
    if not (template / "copier.yml").is_file():
        raise UsageError(f"{TEMPLATE_DIR}/copier.yml is missing")
    facts = CatalogFacts.of(pipeline.load(root))
    name = request.name
    branch = branch_name(name) if spec.is_valid_name(name) else None
    problems = check_name(root, name, facts)
    if not interactive:
        request = complete(request, facts)
        problems += check_request(request, facts)
    else:  # ask only for what is missing, but refuse what was given and is wrong
        given = complete(request, facts)
        problems += [p for p in check_request(given, facts) if not p.startswith("missing --") and "is dedicated" not in p]
    repo, git_problems = git_state(root, commit=commit, allow_dirty=allow_dirty, branch=branch)
    problems += git_problems
    if problems:
        hint = (
            ""
            if interactive or not any(p.startswith("missing --") for p in problems)
            else "pass the missing options (prompts need a terminal and no --no-input)"
        )
        raise refusal(f"cannot create tenant '{name}'", problems, hint)

    data = {**facts.template_data(), **answers_data(request, facts)}
    rendered = render_template(template, name, data, interactive=interactive)
    if interactive:  # the answers typed at the prompts get the same checks as flags
        final = complete(request_from_answers(rendered.answers), facts)
        problems = check_request(final, facts)
        if problems:
            raise refusal(f"cannot create tenant '{name}'", problems)
        request = final
    sink = ErrorSink()
    load_entry(tenant_path(name), rendered.tenant_text, spec.Tenant, sink)
    sink.raise_if_any()  # a template bug, reported against the file it would have written

    template_commit = git.head_commit(repo) if repo is not None else None
    created = [tenant_path(name), answers_path(name)]
    with transaction(root, progress) as tx:
        tx.write(tenant_path(name), rendered.tenant_text)
        tx.write(answers_path(name), answers_text(rendered.answers, template_commit))
        allocations = allocate_networks(root, tx)
        built, report = render_tracked(root, tx)
        files = [rel for rel in tx.changed() if not rel.endswith(tree.TMP_SUFFIX)]
        outputs = sorted(p for p, e in built.result.manifest["files"].items() if e.get("tenant") == name)
        result = NewTenantResult(name, str(request.tier), created, allocations, report, files, outputs)
        result.vended = vended_accounts(built.model, name)
        if commit and repo is not None:
            message = _commit_message(request, allocations, outputs, result.vended)
            with git.deferred_signals():  # a Ctrl-C in here is raised once the commit is final
                sha = git.commit_paths_on_new_branch(repo, root, branch_name(name), files, message)
                tx.keep()
                result.branch, result.commit = branch_name(name), sha
                if progress is not None:
                    progress.committed = f"tenant '{name}' is commit {sha[:12]} on branch {result.branch} (checked out)"
    return result


def vended_accounts(model: Model, tenant: str) -> list[str]:
    """One line per account the org root creates for ``tenant`` (what the PR must say)."""
    org, _ = orgmodel.layout(model)
    if org is None:
        return []
    return [
        f"{a.name} <{a.email}> in OU {org.ou(a.ou).name} ({a.env})"
        for a in org.accounts
        if a.tenant and a.role == tenant and a.adopt is None and not a.retired
    ]


def _commit_message(request: TenantRequest, allocations: list[str], outputs: list[str], vended: Sequence[str] = ()) -> str:
    lines = [
        f"Add tenant {request.name} ({request.tier} tier)",
        "",
        "Scaffolded with `companyos new-tenant` from templates/tenant/.",
        "",
        f"owner: {request.owner}",
        f"cost center: {request.cost_center}",
        f"environments: {', '.join(request.environments or ())}",
        f"services: {', '.join(request.services or ())}",
    ]
    if allocations:
        lines += ["", "Network allocations:", *(f"- {a}" for a in allocations)]
    if vended:
        lines += [
            "",
            f"AWS accounts to create (rendered/terraform/org/tenant-{request.name}.tf; the org root applies first):",
            *(f"- {a}" for a in vended),
        ]
    lines += ["", f"Rendered {len(outputs)} files for the tenant."]
    return "\n".join(lines) + "\n"
