"""The tenant lifecycle: ``new-tenant``, ``update-tenants`` and ``remove-tenant``.

A tenant is one file, ``tenants/<name>.yaml``, rendered by copier from
``templates/tenant/``; its answers live in ``tenants/.copier-answers/<name>.yml`` (a
subfolder, so the catalog loader's ``tenants/*.yaml``/``*.yml`` globs never see it).

Every command here is all-or-nothing. It validates everything it can *before* writing
(name, tier, environments, services, accounts, git state), renders the template into a
temporary folder, and only then changes the repository inside a :class:`FileTransaction`
that remembers the bytes of every file before its first change. Any failure after that
-- a catalog error found by the full render, a git error, Ctrl-C -- restores those bytes,
so no half-written tenant is ever left behind.

Why ``update-tenants`` does not point copier at the repository directly: copier versions a
template by the commits of a git repository *whose root is the template*, and it runs its
update inside the destination repository, which it requires to be entirely clean.
``templates/tenant/`` is a folder of this repository, so each tenant's answers record the
*repository* commit the tenant was last rendered from (``_commit``), and an update builds
two throw-away repositories: one holding the template as of that commit (tag 1.0.0) and
as of HEAD (tag 2.0.0), one holding just the tenant file and its answers. copier's
``run_update`` then does its real three-way merge there, and the merged file is copied
back. See docs/tenants.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from generator import git, pipeline, spec, tree
from generator.errors import CatalogErrors, ErrorSink, UsageError
from generator.load import find_root, load_catalog, load_entry
from generator.model import promotion_order
from generator.render import MANIFEST_PATH

TEMPLATE_DIR = "templates/tenant"
TENANTS_DIR = "tenants"
ANSWERS_DIR = "tenants/.copier-answers"
#: Folders whose uncommitted changes would get mixed into the tenant's commit (or make
#: the recorded template version a lie), so new-tenant refuses to run over them.
CLEAN_FOLDERS = ("catalog", "tenants", "environments", "rendered", ".github", TEMPLATE_DIR)
#: Lines copier writes around an unresolved three-way merge (conflict="inline").
CONFLICT_MARKERS = (b"<<<<<<< before updating", b">>>>>>> after updating")
ANSWERS_HEADER = (
    "# Answers of templates/tenant/ for this tenant: `companyos update-tenants` reads them\n"
    "# to merge template changes into the tenant file. Generated; do not edit by hand.\n"
)


def tenant_path(name: str) -> str:
    return f"{TENANTS_DIR}/{name}.yaml"


def answers_path(name: str) -> str:
    return f"{ANSWERS_DIR}/{name}.yml"


def branch_name(name: str) -> str:
    """The branch new-tenant creates; one per tenant, so two onboardings never collide."""
    return f"tenant/{name}"


# --- the request -------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantRequest:
    """What the caller knows about the new tenant; ``None`` means "not given"."""

    name: str
    tier: str | None = None
    owner: str | None = None
    cost_center: str | None = None
    environments: tuple[str, ...] | None = None
    services: tuple[str, ...] | None = None
    canary: bool | None = None
    accounts: dict[str, str] = field(default_factory=dict)


def parse_accounts(items: Iterable[str]) -> dict[str, str]:
    """``["dev=123456789012", ...]`` -> ``{"dev": "123456789012"}``."""
    out: dict[str, str] = {}
    for item in items:
        env, sep, account = item.partition("=")
        env, account = env.strip(), account.strip()
        if not sep or not env or not account:
            raise UsageError(f"--account expects ENV=ACCOUNT_ID, got {item!r}")
        if env in out:
            raise UsageError(f"--account given twice for environment '{env}'")
        out[env] = account
    return out


def split_list(values: Iterable[str] | None) -> tuple[str, ...] | None:
    """Repeated and comma-separated option values, in order: ``["a,b", "c"] -> (a, b, c)``."""
    if not values:
        return None
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class CatalogFacts:
    """The names a new tenant may refer to, read once from the catalog."""

    tiers: tuple[str, ...]
    dedicated_tiers: tuple[str, ...]
    environments: tuple[str, ...]  # promotion order
    services: tuple[str, ...]
    tenants: tuple[str, ...]

    @classmethod
    def of(cls, catalog: Any) -> CatalogFacts:
        envs = {n: e.spec for n, e in catalog.environments.items()}
        return cls(
            tiers=tuple(sorted(catalog.tiers)),
            dedicated_tiers=tuple(sorted(n for n, t in catalog.tiers.items() if t.spec.isolation == "dedicated")),
            environments=tuple(promotion_order(envs)),
            services=tuple(sorted(catalog.services)),
            tenants=tuple(sorted(catalog.tenants)),
        )

    def template_data(self) -> dict[str, Any]:
        """The hidden ``known_*`` questions of copier.yml (help, defaults, validators)."""
        return {
            "known_tiers": list(self.tiers),
            "dedicated_tiers": list(self.dedicated_tiers),
            "known_environments": list(self.environments),
            "known_services": list(self.services),
        }


def _known(kind: str, names: Sequence[str]) -> str:
    return f"known {kind}: {', '.join(names) or 'none defined'}"


def check_name(root: Path, name: str, facts: CatalogFacts) -> list[str]:
    if not spec.is_valid_name(name):
        return [f"'{name}' is not a valid tenant name: use 2-20 lowercase letters, digits and '-', "
                "starting with a letter and not ending with '-'"]
    if name in facts.tenants or (root / tenant_path(name)).exists():
        return [f"tenant '{name}' already exists ({tenant_path(name)})"]
    if (root / answers_path(name)).exists():
        return [f"{answers_path(name)} already exists (left over from an earlier tenant?); remove it first"]
    return []


def complete(request: TenantRequest, facts: CatalogFacts) -> TenantRequest:
    """Fill what a script may leave out with the defaults: every environment (promotion
    order), every service, no canary, no accounts."""
    envs = request.environments if request.environments is not None else facts.environments
    order = {e: i for i, e in enumerate(facts.environments)}
    envs = tuple(sorted(envs, key=lambda e: order.get(e, len(order))))
    return TenantRequest(
        name=request.name,
        tier=request.tier,
        owner=request.owner,
        cost_center=request.cost_center,
        environments=envs,
        services=request.services if request.services is not None else facts.services,
        canary=bool(request.canary),
        accounts=dict(request.accounts),
    )


def check_request(request: TenantRequest, facts: CatalogFacts) -> list[str]:
    """Every problem with a completed request, as flag-level messages (all at once)."""
    problems: list[str] = []
    if request.tier is None:
        problems.append("missing --tier (" + _known("tiers", facts.tiers) + ")")
    elif request.tier not in facts.tiers:
        problems.append(f"unknown tier '{request.tier}' ({_known('tiers', facts.tiers)})")
    if request.owner is None:
        problems.append("missing --owner (the owning team's e-mail address)")
    elif not _matches(spec.Email, request.owner):
        problems.append(f"--owner '{request.owner}' is not an e-mail address")
    if request.cost_center is None:
        problems.append("missing --cost-center (CC- and 3 to 6 digits)")
    elif not _matches(spec.CostCenter, request.cost_center):
        problems.append(f"--cost-center '{request.cost_center}' is not a cost center: use CC- followed by 3 to 6 digits")
    envs, services = request.environments or (), request.services or ()
    if not envs:
        problems.append("--environments is empty")
    for env in envs:
        if env not in facts.environments:
            problems.append(f"unknown environment '{env}' ({_known('environments', facts.environments)})")
    for kind, names in (("environment", envs), ("service", services)):
        dupes = sorted({n for n in names if list(names).count(n) > 1})
        if dupes:
            problems.append(f"{kind} listed more than once: {', '.join(dupes)}")
    if not services:
        problems.append("--services is empty")
    for svc in services:
        if svc not in facts.services:
            problems.append(f"unknown service '{svc}' ({_known('services', facts.services)})")
    dedicated = request.tier in facts.dedicated_tiers
    for env, account in sorted(request.accounts.items()):
        if env not in envs:
            problems.append(f"--account for environment '{env}', which the tenant is not deployed to")
        if not _matches(spec.AccountId, account):
            problems.append(f"--account {env}={account}: an AWS account id is 12 digits")
    if dedicated:
        missing = [e for e in envs if e not in request.accounts]
        if missing:
            problems.append(f"tier '{request.tier}' is dedicated: give the tenant's own AWS account per environment with "
                            + " ".join(f"--account {e}=<12-digit id>" for e in missing))
    elif request.accounts and request.tier in facts.tiers:
        problems.append(f"tier '{request.tier}' is pooled: its tenants run in the pool account, so drop --account")
    return problems


def _matches(annotated: Any, value: str) -> bool:
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter(annotated).validate_python(value)
        return True
    except ValidationError:
        return False


def _answers_data(request: TenantRequest, facts: CatalogFacts) -> dict[str, Any]:
    """The answers to copier.yml's questions for a request (only those that are known)."""
    data: dict[str, Any] = {"name": request.name}
    for key in ("tier", "owner", "cost_center", "canary"):
        value = getattr(request, key)
        if value is not None:
            data[key] = value
    if request.environments is not None:
        data["environments"] = list(request.environments)
    if request.services is not None:
        data["services"] = list(request.services)
    pooled = request.tier in facts.tiers and request.tier not in facts.dedicated_tiers
    if request.accounts or pooled:  # a pooled tenant is never asked for accounts
        data["accounts"] = {env: request.accounts[env] for env in (request.environments or ()) if env in request.accounts}
    return data


def _request_from_answers(answers: dict[str, Any]) -> TenantRequest:
    accounts = answers.get("accounts") or {}
    return TenantRequest(
        name=str(answers.get("name")),
        tier=answers.get("tier"),
        owner=answers.get("owner"),
        cost_center=answers.get("cost_center"),
        environments=tuple(answers.get("environments") or ()),
        services=tuple(answers.get("services") or ()),
        canary=bool(answers.get("canary")),
        accounts={str(k): str(v) for k, v in accounts.items()} if isinstance(accounts, dict) else {},
    )


# --- rendering the template ----------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    tenant_text: bytes
    answers: dict[str, Any]


def render_template(template: Path, name: str, data: dict[str, Any], *, interactive: bool) -> Rendered:
    """Run copier into a temporary folder and return the tenant file and the answers.

    Non-interactive runs take every missing answer from copier.yml's defaults; interactive
    runs prompt (with copier.yml's help texts and validators) for what ``data`` lacks.
    Nothing outside the temporary folder is touched; ``unsafe=False`` refuses templates
    with tasks or extensions.
    """
    from copier import run_copy
    from copier.errors import CopierError

    with tempfile.TemporaryDirectory(prefix="companyos-tenant-") as tmp:
        dst = Path(tmp) / "out"
        try:
            run_copy(str(template), dst, data=data, defaults=not interactive, unsafe=False,
                     skip_tasks=True, quiet=True, overwrite=True, cleanup_on_error=True)
        except KeyboardInterrupt:
            raise
        except (CopierError, ValueError) as exc:
            raise UsageError(f"the tenant template refused the answers: {exc}") from exc
        tenant_file = dst / tenant_path(name)
        answers_file = dst / answers_path(name)
        if not tenant_file.is_file() or not answers_file.is_file():
            raise UsageError(f"{TEMPLATE_DIR} did not produce {tenant_path(name)} and {answers_path(name)}")
        answers = yaml.safe_load(answers_file.read_text(encoding="utf-8")) or {}
        return Rendered(tenant_file.read_bytes(), {k: v for k, v in answers.items() if not k.startswith("_")})


def answers_text(answers: dict[str, Any], commit: str | None, src_path: str = TEMPLATE_DIR) -> bytes:
    """The answers file: template version first, then the answers, sorted; deterministic."""
    data: dict[str, Any] = {}
    if commit:
        data["_commit"] = commit
    data["_src_path"] = src_path
    data.update(sorted((k, v) for k, v in answers.items() if not k.startswith("_")))
    return (ANSWERS_HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=4096)).encode("utf-8")


def read_answers(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise UsageError(f"{path.name} is not a YAML mapping of answers")
    return data


# --- all or nothing ---------------------------------------------------------------------------


class FileTransaction:
    """Remembers each file's bytes before its first change; :meth:`rollback` puts them back.

    Files that did not exist are deleted again, with the folders created for them.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.saved: dict[str, bytes | None] = {}

    def track(self, *rels: str) -> None:
        for rel in rels:
            if rel not in self.saved:
                path = self.root / rel
                self.saved[rel] = path.read_bytes() if path.is_file() else None

    def write(self, rel: str, data: bytes) -> None:
        self.track(rel)
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + tree.TMP_SUFFIX)
        self.track(tmp.relative_to(self.root).as_posix())
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def delete(self, rel: str) -> None:
        self.track(rel)
        (self.root / rel).unlink(missing_ok=True)
        _prune_empty((self.root / rel).parent, self.root)

    def changed(self) -> list[str]:
        """Tracked files whose bytes differ now (created, changed or deleted)."""
        out = []
        for rel, before in self.saved.items():
            path = self.root / rel
            now = path.read_bytes() if path.is_file() else None
            if now != before:
                out.append(rel)
        return sorted(out)

    def rollback(self) -> None:
        for rel, data in self.saved.items():
            path = self.root / rel
            if data is None:
                if path.is_file() or path.is_symlink():
                    path.unlink()
                _prune_empty(path.parent, self.root)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.is_file() or path.read_bytes() != data:
                    path.write_bytes(data)


def _prune_empty(folder: Path, root: Path) -> None:
    root = root.resolve()
    while folder.resolve() != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


@contextmanager
def transaction(root: Path) -> Iterator[FileTransaction]:
    tx = FileTransaction(root)
    try:
        yield tx
    except BaseException:
        tx.rollback()
        raise


def _allocate(root: Path, tx: FileTransaction) -> list[str]:
    """Record (or release) the tenant's VPC CIDRs in catalog/networks.yaml."""
    from generator import networks

    tx.track(networks.NETWORKS_PATH)
    return networks.allocate(root, write=True)


def _render(root: Path, tx: FileTransaction) -> tuple[pipeline.Build, tree.WriteReport]:
    """Render the whole catalog and write it, tracking every file the write may touch."""
    def track(st: tree.TreeStatus) -> None:
        touched = [*st.changed, *st.missing, *st.stale, MANIFEST_PATH]
        tx.track(*touched, *(rel + tree.TMP_SUFFIX for rel in touched))

    built = pipeline.build(root)
    return built, tree.write(built.result, root, before=track)


def _git_state(root: Path, *, commit: bool, allow_dirty: bool, branch: str | None) -> tuple[Any, list[str]]:
    """The repository (or None) and every git-related reason to refuse."""
    problems: list[str] = []
    repo = git.open_repo(root)
    if repo is None:
        if commit:
            problems.append(f"{root} is not inside a git repository; run `git init` and commit the catalog, "
                            "or pass --no-commit to only write the files")
        return None, problems
    if commit:
        if git.head_commit(repo) is None:
            problems.append("the repository has no commit yet; commit the catalog first")
        if branch is not None and git.branch_exists(repo, branch):
            problems.append(f"branch '{branch}' already exists; delete it (git branch -D {branch}) or pick another name")
    if not allow_dirty:
        dirty = git.dirty_paths(repo, root, [f for f in CLEAN_FOLDERS if (root / f).exists()])
        if dirty:
            shown = ", ".join(dirty[:8]) + (f" and {len(dirty) - 8} more" if len(dirty) > 8 else "")
            problems.append(f"uncommitted changes in {shown}; commit or stash them first (or pass --allow-dirty)")
    return repo, problems


def _refuse(what: str, problems: list[str], hint: str = "") -> UsageError:
    lines = "\n".join(f"  - {p}" for p in problems)
    return UsageError(f"{what}:\n{lines}\n{hint + '; ' if hint else ''}nothing was written")


# --- new-tenant -------------------------------------------------------------------------------


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


def new_tenant(
    root: Path | None,
    request: TenantRequest,
    *,
    interactive: bool = False,
    commit: bool = True,
    allow_dirty: bool = False,
) -> NewTenantResult:
    """Scaffold ``tenants/<name>.yaml``, allocate its networks, render, and (``commit``)
    create branch ``tenant/<name>`` holding exactly that change; switch to it."""
    root = find_root(root or Path.cwd())
    if not (root / "catalog" / "platform.yaml").is_file():
        raise UsageError(f"{root} is not a CompanyOS repository (no catalog/platform.yaml)")
    template = root / TEMPLATE_DIR
    if not (template / "copier.yml").is_file():
        raise UsageError(f"{TEMPLATE_DIR}/copier.yml is missing")
    facts = CatalogFacts.of(load_catalog(root))
    name = request.name
    branch = branch_name(name) if spec.is_valid_name(name) else None
    problems = check_name(root, name, facts)
    if not interactive:
        request = complete(request, facts)
        problems += check_request(request, facts)
    else:  # ask only for what is missing, but refuse what was given and is wrong
        given = complete(request, facts)
        problems += [p for p in check_request(given, facts) if not p.startswith("missing --") and "is dedicated" not in p]
    repo, git_problems = _git_state(root, commit=commit, allow_dirty=allow_dirty, branch=branch)
    problems += git_problems
    if problems:
        hint = "" if interactive or not any(p.startswith("missing --") for p in problems) else \
            "pass the missing options (prompts need a terminal and no --no-input)"
        raise _refuse(f"cannot create tenant '{name}'", problems, hint)

    data = {**facts.template_data(), **_answers_data(request, facts)}
    rendered = render_template(template, name, data, interactive=interactive)
    if interactive:  # the answers typed at the prompts get the same checks as flags
        final = complete(_request_from_answers(rendered.answers), facts)
        problems = check_request(final, facts)
        if problems:
            raise _refuse(f"cannot create tenant '{name}'", problems)
        request = final
    sink = ErrorSink()
    load_entry(tenant_path(name), rendered.tenant_text, spec.Tenant, sink)
    sink.raise_if_any()  # a template bug, reported against the file it would have written

    template_commit = git.head_commit(repo) if repo is not None else None
    created = [tenant_path(name), answers_path(name)]
    with transaction(root) as tx:
        tx.write(tenant_path(name), rendered.tenant_text)
        tx.write(answers_path(name), answers_text(rendered.answers, template_commit))
        allocations = _allocate(root, tx)
        built, report = _render(root, tx)
        files = [rel for rel in tx.changed() if not rel.endswith(tree.TMP_SUFFIX)]
        outputs = sorted(p for p, e in built.result.manifest["files"].items() if e.get("tenant") == name)
        result = NewTenantResult(name, str(request.tier), created, allocations, report, files, outputs)
        if commit and repo is not None:
            result.branch = branch
            result.commit = git.commit_paths_on_new_branch(repo, root, branch_name(name), files, _commit_message(request, allocations, outputs))
    return result


def _commit_message(request: TenantRequest, allocations: list[str], outputs: list[str]) -> str:
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
    lines += ["", f"Rendered {len(outputs)} files for the tenant."]
    return "\n".join(lines) + "\n"


# --- update-tenants ---------------------------------------------------------------------------


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


def update_tenants(root: Path | None, names: Sequence[str] = (), *, render: bool = True) -> UpdateResult:
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
        raise UsageError("uncommitted changes in " + ", ".join(dirty[:8])
                         + "; commit them first so the update is one reviewable diff")
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
    with tempfile.TemporaryDirectory(prefix="companyos-update-") as tmp, transaction(root) as tx:
        for name in names or available:
            result.tenants.append(_update_one(root, repo, tx, name, head, template_git, new_tree, Path(tmp), scratch))
        updated = [t.name for t in result.tenants if t.status == "updated"]
        if render and not result.conflicts and updated:
            try:
                _, result.report = _render(root, tx)
            except CatalogErrors as exc:  # the merged files are rolled back: say what they said
                raise UsageError(
                    f"the template change, merged into {', '.join(updated)}, breaks the catalog:\n"
                    + "\n".join(f"  {e}" for e in exc.errors)
                    + f"\nfix {TEMPLATE_DIR} and commit; nothing was written") from exc
    return result


def _update_one(root: Path, repo: Any, tx: FileTransaction, name: str, head: str, template_git: str,
                new_tree: Any, tmp: Path, scratch: dict[str, Path]) -> TenantUpdate:
    answers_file = root / answers_path(name)
    if not answers_file.is_file():
        return TenantUpdate(name, "skipped", f"no {answers_path(name)}: not scaffolded from the template")
    answers = read_answers(answers_file)
    old = answers.get("_commit")
    if not old:
        return TenantUpdate(name, "error", f"{answers_path(name)} records no template version (_commit)")
    old_tree = git.tree_at(repo, str(old), template_git)
    if old_tree is None:
        return TenantUpdate(name, "error", f"template version {old} is not in this clone's history "
                            "(a shallow clone? fetch the full history)")
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
        return TenantUpdate(name, "conflict", f"{tenant_path(name)} has conflict markers; resolve them, "
                            "then run `companyos render`")
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
        run_update(dst, vcs_ref="2.0.0", answers_file=answers_path(name),
                   defaults=True, overwrite=True, unsafe=False, skip_tasks=True, quiet=True,
                   conflict="inline", skip_answered=True)
    except KeyboardInterrupt:
        raise
    except (CopierError, ValueError) as exc:
        raise UsageError(f"copier could not update tenant '{name}': {exc}") from exc
    new_answers = read_answers(dst / answers_path(name))
    return (dst / tenant_path(name)).read_bytes(), {k: v for k, v in new_answers.items() if not k.startswith("_")}


# --- remove-tenant ----------------------------------------------------------------------------


@dataclass
class RemoveResult:
    name: str
    tier: str
    dedicated: bool
    removed: list[str]
    released: list[str]
    report: tree.WriteReport
    checklist: list[str]


def remove_tenant(root: Path | None, name: str, *, acknowledge_data_retention: bool = False) -> RemoveResult:
    """Delete the tenant's file and answers, release its networks and re-render (which
    prunes its generated files). Destroys no cloud resource: the returned checklist says
    what a human must do, in order."""
    root = find_root(root or Path.cwd())
    catalog = load_catalog(root)
    entry = catalog.tenants.get(name)
    if entry is None:
        raise UsageError(f"unknown tenant '{name}' (known: {', '.join(sorted(catalog.tenants)) or 'none'})")
    from generator.model import resolve

    model = resolve(catalog)
    tenant = entry.spec
    tier = catalog.tiers[tenant.tier].spec
    dedicated = tier.isolation == "dedicated"
    roots = sorted({str(e["root"]) for e in tree.read_manifest(root).values()
                    if e.get("tenant") == name and e.get("root")})
    checklist = decommission_checklist(model, name, roots)
    if dedicated and not acknowledge_data_retention:
        raise UsageError(
            f"tenant '{name}' is on the dedicated tier '{tenant.tier}': its data is under retention "
            "(backups, object lock, logs) and its accounts must be closed by hand. Read the checklist "
            "below, then re-run with --acknowledge-data-retention; nothing was written.\n"
            + "\n".join(checklist))
    with transaction(root) as tx:
        removed = []
        for rel in (entry.path, answers_path(name)):
            if (root / rel).is_file():
                tx.delete(rel)
                removed.append(rel)
        released = _allocate(root, tx)
        _, report = _render(root, tx)
    return RemoveResult(name, tenant.tier, dedicated, removed, released, report, checklist)


def decommission_checklist(model: Any, name: str, roots: Sequence[str] = ()) -> list[str]:
    """What must happen outside git, per environment, from the tenant's resolved settings."""
    deployments = [d for d in model.deployments if d.name == name]
    items = []
    n = 0

    def add(text: str) -> None:
        nonlocal n
        n += 1
        items.append(f"{n:>2}. {text}")

    if roots:
        add(f"review: this change removes the Terraform root(s) {', '.join(roots)} and the tenant's Argo CD applications; "
            "`companyos check --base <main>` reports that as destructive and CI needs the 'allow-destruction' PR label: "
            "add it only after the final snapshots below exist")

    for d in deployments:
        s = d.settings
        where = f"account {d.account_id}" + ("" if d.dedicated else f" (pool of tier '{d.tier.name}')")
        add(f"[{d.env}] final snapshot: snapshot the tenant's database ({'its own RDS instance' if d.dedicated else 'its schema on the pooled instance: pg_dump'}) "
            f"in {where} and copy it to {d.environment.aws.dr_region}; record it in ops/backup-verification")
        add(f"[{d.env}] retention: keep backups {s.database.backup_retention_days} days, logs {s.logs.retention_days} days"
            + (f", S3 objects under {s.storage.object_lock} object lock for {s.storage.object_lock_days} days" if s.storage.object_lock != "none" else "")
            + "; schedule KMS key deletion only after the last of them expires")
        add(f"[{d.env}] workloads: after the merge Argo CD prunes namespace {d.namespace}; confirm it is gone and delete the tenant's Secrets Manager entries")
        if d.dedicated:
            add(f"[{d.env}] account closure: once retention ends and the account's resources are gone (deletion protection and "
                f"object lock keep them until then; the VPC range is already released for reuse), close AWS account {d.account_id} in AWS Organizations")
    add("budget and cost reports: confirm the tenant's budget alerts stopped and its cost center is closed")
    return items
