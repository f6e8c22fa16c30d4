"""What a change touches: tenants, environments and Terraform roots, from the manifest.

The manifest committed at a base ref is compared with the working tree's, file by file
(sha256), and each added, changed or removed file is mapped to the tenant, environment and
root the manifest recorded for it: no guessing from catalog paths. The JSON form is what a
workflow matrix takes as is. See docs/ci.md ("companyos affected").
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from generator.catalog.folders import MANIFEST_PATH
from generator.errors import UsageError
from generator.git import blobs, git_path, read_blob, require_repo, resolve_commit, tree_entries
from generator.model import naming
from generator.model.ci import MAX_JOBS
from generator.model.resolve import Model
from generator.ops import fleet
from generator.output.tree import UNITS_DIR, listed_roots, manifest_roots, manifests_files, read_file, read_manifest
from generator.targets import workflows

KINDS = ("added", "changed", "removed")
#: Plan and apply order (org -> shared -> pool -> tenant) and GitHub's jobs-per-matrix limit.
LAYERS = workflows.TERRAFORM_LAYERS
ORG_DIR = "rendered/terraform/org"


@dataclass(frozen=True, order=True)
class FileChange:
    path: str
    kind: str  # added | changed | removed
    tenant: str | None = None
    environment: str | None = None
    root: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class Root:
    """A Terraform root directory and how CI reaches its account (one matrix row)."""

    root: str  # rendered/terraform/<env>/<name>
    environment: str
    name: str
    id: str  # <env>-<name>: artifact names and concurrency groups cannot hold '/'
    account_id: str
    role_arn: str
    region: str


@dataclass
class Affected:
    base: str
    changes: list[FileChange] = field(default_factory=list)
    #: Roots that still exist in the working tree, in promotion order then by name.
    roots: list[Root] = field(default_factory=list)
    #: Roots whose files were all deleted: `terraform destroy` needs the old code, so CI
    #: reports them for a human instead of planning them.
    removed_roots: list[str] = field(default_factory=list)
    #: Services whose migrations folder (``service.migrations.path``) changed.
    migrations: list[str] = field(default_factory=list)
    env_order: tuple[str, ...] = ()
    #: The organization root (rendered/terraform/org) when its files changed and it can be
    #: applied (platform.management_account is set); planned first, before any environment.
    org: Root | None = None

    @property
    def tenants(self) -> list[str]:
        return sorted({c.tenant for c in self.changes if c.tenant})

    @property
    def environments(self) -> list[str]:
        return sorted({c.environment for c in self.changes if c.environment}, key=self.env_rank)

    def env_rank(self, name: str) -> tuple[int, str]:
        """Sort key: promotion order, then anything else (e.g. "(all)") by name."""
        return (self.env_order.index(name) if name in self.env_order else len(self.env_order), name)

    @property
    def file_counts(self) -> dict[str, int]:
        return {kind: sum(1 for c in self.changes if c.kind == kind) for kind in KINDS}

    def only(self, env: str) -> Affected:
        """The same answer restricted to one environment (one apply stage)."""
        return Affected(
            base=self.base,
            changes=[c for c in self.changes if c.environment == env],
            roots=[r for r in self.roots if r.environment == env],
            removed_roots=[r for r in self.removed_roots if _root_env(r) == env],
            migrations=self.migrations,
            env_order=self.env_order,
        )

    def layer(self, name: str) -> list[Root]:
        """The roots of one plan layer (``LAYERS``), in promotion order then by name."""
        if name not in LAYERS:
            raise UsageError(f"unknown layer '{name}' (expected one of: {', '.join(LAYERS)})")
        if name == "org":
            return [self.org] if self.org is not None else []
        return [r for r in self.roots if layer_of(r) == name]

    def shard(self, spec: str | None) -> Affected:
        """Only every N-th root (``K/N``): GitHub runs at most 256 jobs per matrix, so the
        generated workflows split big matrices into N jobs with one shard each."""
        if spec is None:
            return self
        return Affected(self.base, self.changes, select_shard(self.roots, spec), self.removed_roots, self.migrations, self.env_order)

    def as_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "count": len(self.roots),
            "environments": self.environments,
            "files": self.file_counts,
            "include": [asdict(r) for r in self.roots],
            "migrations": self.migrations,
            "removed_roots": self.removed_roots,
            "roots": [r.root for r in self.roots],
            "tenants": self.tenants,
        }


# --- manifests -------------------------------------------------------------------------


def diff_manifests(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[FileChange]:
    """Files added, changed (sha256) or removed between two manifests' ``files`` maps."""
    changes = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before is not None and after is not None and before.get("sha256") == after.get("sha256"):
            continue
        kind = "added" if before is None else "removed" if after is None else "changed"
        entry = after if after is not None else before
        assert entry is not None
        changes.append(FileChange(path, kind, entry.get("tenant"), entry.get("environment"), entry.get("root"), entry.get("target")))
    return changes


def _files(data: Any, where: str) -> dict[str, dict[str, Any]]:
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise UsageError(f"{where} is not a companyos manifest (no 'files' map)")
    return files


def working_roots(root: Path) -> set[str]:
    """Every Terraform root the unit manifests on disk name (``tree.listed_roots``: one
    manifest in memory at a time)."""
    found = listed_roots(root)
    if found is None:
        raise UsageError(f"no manifest under {UNITS_DIR}/: run `companyos render` first")
    return found


def working_manifest(root: Path) -> dict[str, dict[str, Any]]:
    """Every generated file the unit manifests on disk list (``output.units``)."""
    files = read_manifest(root, own=False)
    if not files:
        raise UsageError(f"no manifest under {UNITS_DIR}/: run `companyos render` first")
    return files


def manifest_at(repo: Any, commit: Any, root: Path) -> dict[str, dict[str, Any]]:
    """Every generated file the unit manifests list at ``commit`` (or, for a commit rendered
    before units, its fleet-wide manifest); empty when that commit had no manifest yet."""
    found: dict[str, bytes | None] = {}
    try:
        folder = commit.tree / git_path(repo, root, UNITS_DIR)
        found = {str(blob.path): blob.data_stream.read() for blob in blobs(folder) if str(blob.path).endswith(".json")}
    except KeyError:
        pass
    if not found:
        rel = git_path(repo, root, MANIFEST_PATH)
        try:
            blob = commit.tree / rel
        except KeyError:
            return {}
        try:
            return _files(json.loads(blob.data_stream.read().decode("utf-8")), f"{rel} at {commit.hexsha[:12]}")
        except ValueError as exc:
            raise UsageError(f"{rel} at {commit.hexsha[:12]} is not valid JSON: {exc}") from None
    return manifests_files(found, own=False)


def changed_paths(repo: Any, commit: Any, root: Path, folders: Iterable[str] = (".",)) -> list[str]:
    """Paths (relative to ``root``) below ``folders`` (relative to ``root``) that differ
    between ``commit`` and the working tree, untracked files included (ignored ones not). Asked
    of the folders alone: over the whole tree git stats every output file (800,000 at
    10,000 tenants)."""
    prefix = git_path(repo, root, ".")
    prefix = "" if prefix == "." else prefix + "/"
    specs = []
    for folder in folders:
        inner = folder.strip("/")
        specs.append(prefix + inner if inner not in ("", ".") else prefix or ".")
    if not specs:
        return []
    names = repo.git.diff("--name-only", "--no-renames", "-z", commit.hexsha, "--", *specs).split("\0")
    names += repo.git.ls_files("--others", "--exclude-standard", "-z", "--", *specs).split("\0")
    return sorted({n.removeprefix(prefix) for n in names if n and n.startswith(prefix)})


@dataclass(frozen=True)
class _ManifestChange:
    """The files that changed between the base's unit manifests and the working tree's, and
    whether a Terraform root is still named by a working-tree entry."""

    changes: list[FileChange]
    live: Callable[[str], bool]


def _manifest_change(repo: Any, commit: Any, root: Path) -> _ManifestChange:
    """Only the unit manifests whose bytes differ from the base's are read on both sides: an
    equal one lists the same files with the same sha256s (at 10,000 tenants x 3, decoding all
    20,000 of them was most of `affected`'s 37 s and 3 GB). A root those units no longer name
    may live on in another unit (a tenant's unit names its pool's and the shared root): it is
    confirmed against every manifest on disk, read only then. A base older than unit
    manifests (or without any) is compared whole."""
    if not any((root / UNITS_DIR).glob("*.json")):
        working_manifest(root)  # the UsageError: nothing rendered to compare
    units = git_path(repo, root, UNITS_DIR)
    prefix = units.removesuffix(UNITS_DIR)
    base_ids = {path.removeprefix(prefix): sha for path, _, sha in tree_entries(repo, commit.hexsha, units) if path.endswith(".json")}
    if not base_ids:
        new = working_manifest(root)
        return _ManifestChange(diff_manifests(manifest_at(repo, commit, root), new), manifest_roots(new).__contains__)
    differ = [p for p in changed_paths(repo, commit, root, [UNITS_DIR]) if p.endswith(".json")]
    old = manifests_files({p: read_blob(repo, base_ids[p]) for p in differ if p in base_ids}, own=False)
    new = manifests_files({p: read_file(root / p) for p in differ}, own=False)
    named = manifest_roots(new)

    @functools.cache
    def every_root() -> set[str]:  # a root the changed units no longer name: asked of every manifest, once
        return working_roots(root)

    return _ManifestChange(diff_manifests(old, new), lambda name: name in named or name in every_root())


# --- roots -----------------------------------------------------------------------------


def _root_env(root: str) -> str:
    parts = root.split("/")
    return parts[2] if len(parts) >= 4 else ""


def select_shard(items: list[Root], spec: str) -> list[Root]:
    """Items ``K-1, K-1+N, ...`` for ``spec`` = ``K/N`` (1-based), a stable partition."""
    k, n = fleet.part(spec, "--shard")
    return items[k - 1 :: n]


def root_info(model: Model, root: str, accounts: Callable[[str], Mapping[str, str]] | None = None) -> Root:
    """Which account (and so which OIDC role) a Terraform root applies to.

    Root names come from ``naming`` like the terraform target's: ``shared`` (the
    environment's shared-services account), ``pool-<tier>`` (the pooled tier's account) and
    ``tenant-<name>`` (the tenant's account: its own for dedicated tiers, the pool's otherwise).
    ``accounts``: environment -> its roots' accounts (:func:`environment_accounts`, kept by a
    caller that asks for many roots).
    """
    parts = root.split("/")
    if len(parts) != 4 or parts[:2] != ["rendered", "terraform"]:
        raise UsageError(f"manifest root {root!r} is not rendered/terraform/<env>/<root>")
    env_name, name = parts[2], parts[3]
    env = model.environment(env_name)
    if env is None:
        raise UsageError(f"manifest root {root!r}: unknown environment '{env_name}'")
    account = (accounts or functools.partial(environment_accounts, model))(env_name).get(name)
    if account is None:
        raise UsageError(f"manifest root {root!r}: cannot tell which AWS account it belongs to")
    return Root(
        root=naming.terraform_root_dir(env_name, name),
        environment=env_name,
        name=name,
        id=f"{env_name}-{name}",
        account_id=account,
        role_arn=naming.account_role_arn(account, model.platform),
        region=env.aws.region,
    )


def environment_accounts(model: Model, env_name: str) -> dict[str, str]:
    """Root name -> the AWS account its Terraform runs in, for every root of an environment.
    Made once per environment by a caller asking for many roots: made per root, it was a pass
    over every tenant per root (466 s for the drift matrix at 10,000 tenants x 3)."""
    env = model.environment(env_name)
    if env is None:
        return {}
    accounts = {naming.SHARED_ROOT: env.accounts.shared_services}
    accounts.update({naming.pool_root(tier): acct for tier, acct in env.accounts.pools.items()})
    # A vended account's id is known only to Terraform: CI starts from the management account,
    # whose trust the account's Terraform role has from creation (org root, role_name).
    accounts.update(
        {
            naming.tenant_root(d.name): model.platform.management_account or d.account_id if d.account_pending else d.account_id
            for d in model.in_environment(env_name)
        }
    )
    return accounts


def _sorted_roots(model: Model, roots: Iterable[str]) -> list[Root]:
    order = [e.name for e in model.environments]
    accounts = functools.cache(functools.partial(environment_accounts, model))
    infos = [root_info(model, r, accounts) for r in set(roots)]
    # Within an environment: the shared root, then pools, then tenants (the apply order
    # `just infra` uses, since tenant roots read what shared and pool roots create).
    rank = {naming.SHARED_ROOT: 0}
    return sorted(
        infos, key=lambda r: (order.index(r.environment), rank.get(r.name, 1 if r.name.startswith(naming.pool_root("")) else 2), r.name)
    )


def all_roots(model: Model, roots: Iterable[str]) -> list[Root]:
    """Every Terraform root of ``roots`` (the manifests': :func:`working_roots`), in apply
    order, with its account (the nightly drift matrix)."""
    return _sorted_roots(model, roots)


# --- the query -------------------------------------------------------------------------


def affected(root: Path, base: str, model: Model) -> Affected:
    """Compare the manifest at ``base`` with the working tree's (see the module docstring)."""
    repo = require_repo(root, "`affected` compares against a git ref")
    commit = resolve_commit(repo, base)
    found = _manifest_change(repo, commit, root)
    changes = found.changes
    touched = {c.root for c in changes if c.root}
    live_roots = {r for r in touched if found.live(r)}
    folders = {name: svc.migrations.path for name, svc in model.services.items() if svc.migrations is not None}
    paths = changed_paths(repo, commit, root, sorted(set(folders.values())))
    migrations = sorted(name for name, folder in folders.items() if any(_under(p, folder) for p in paths))
    return Affected(
        base=commit.hexsha,
        changes=changes,
        roots=_sorted_roots(model, live_roots),
        removed_roots=sorted(touched - live_roots),
        migrations=migrations,
        env_order=tuple(e.name for e in model.environments),
        org=org_root(model) if any(_under(c.path, ORG_DIR) for c in changes) else None,
    )


def org_root(model: Model) -> Root | None:
    """The organization root, applied from the management account (None without one)."""
    account = model.platform.management_account
    if account is None or not model.environments:
        return None
    return Root(
        root=ORG_DIR,
        environment="org",
        name="org",
        id="org",
        account_id=account,
        role_arn=naming.account_role_arn(account, model.platform),
        region=model.environments[0].aws.region,
    )


def layer_of(root: Root) -> str:
    """Which of ``LAYERS`` a root belongs to."""
    if root.root == ORG_DIR:
        return "org"
    if root.name == naming.SHARED_ROOT:
        return "shared"
    return "pool" if root.name.startswith(naming.pool_root("")) else "tenant"


# --- batches: matrices GitHub accepts at any fleet size -----------------------------------


def batch_matrix(items: list[Root], max_jobs: int = MAX_JOBS) -> str:
    """The matrix a workflow job expands: one ``batch`` (``K/N``) per job, at most
    ``max_jobs`` jobs, several roots per job beyond that, and nothing else, so the output
    stays a few KB at any fleet size (GitHub: 1 MB per job output); each job asks
    ``companyos batches --batch K/N`` for its roots."""
    return fleet.matrix(items, max_jobs)


def select_batch(items: list[Root], spec: str, max_jobs: int = MAX_JOBS) -> list[Root]:
    """The roots of batch ``K/N`` of :func:`batch_matrix` (a matrix made from a different
    answer has another N and is refused rather than plan the wrong roots)."""
    return fleet.pick(items, spec, max_jobs)


def workflow_matrices(result: Affected, envs: list[str]) -> list[tuple[str, list[Root]]]:
    """(output name, roots) of every matrix the terraform workflow reads: ``plan_<layer>``
    over all environments, ``apply_org``, and ``<env>_<layer>`` per apply stage; a layer the
    workflow splits (``workflows.layer_shards``) as one matrix per shard, ``..._K_of_N``."""
    out: list[tuple[str, list[Root]]] = []
    for layer in LAYERS:
        out += _sharded(f"plan_{layer}", layer, result.layer(layer))
    out.append(("apply_org", result.layer("org")))
    for env in envs:
        scoped = result.only(env)
        for layer in LAYERS:
            if layer != "org":
                out += _sharded(f"{env}_{layer}", layer, scoped.layer(layer))
    return out


def _sharded(name: str, layer: str, items: list[Root]) -> list[tuple[str, list[Root]]]:
    return [(name + workflows.shard_suffix(s, "_"), items if s is None else select_shard(items, s)) for s in workflows.layer_shards(layer)]


def roots_tsv(items: list[Root]) -> str:
    """One root per line: directory, id, role ARN, region (what a batch job loops over)."""
    return "".join(f"{r.root}\t{r.id}\t{r.role_arn}\t{r.region}\n" for r in items)


def _under(path: str, folder: str) -> bool:
    folder = folder.strip("/")
    return path == folder or path.startswith(folder + "/")


# --- output ----------------------------------------------------------------------------


def to_json(result: Affected) -> str:
    """One line, so ``echo "dev=$(companyos affected ... --format json)" >> $GITHUB_OUTPUT`` works."""
    return json.dumps(result.as_dict(), sort_keys=True, separators=(",", ":"))


def to_text(result: Affected) -> str:
    lines = [f"{c.kind:<8} {c.path}" for c in result.changes]
    lines.append(f"tenants: {', '.join(result.tenants) or '-'}")
    lines.append(f"environments: {', '.join(result.environments) or '-'}")
    lines.append(f"roots: {', '.join(r.root for r in result.roots) or '-'}")
    if result.removed_roots:
        lines.append(f"removed roots: {', '.join(result.removed_roots)}")
    if result.migrations:
        lines.append(f"migrations: {', '.join(result.migrations)}")
    return "\n".join(lines) + "\n"


def to_markdown(result: Affected) -> str:
    """The render-check job summary: what the change does per environment and tenant."""
    counts = result.file_counts
    out = [
        f"### Rendered changes against `{result.base[:12]}`",
        "",
        f"{len(result.changes)} generated files differ: {counts['added']} added, {counts['changed']} changed, {counts['removed']} removed.",
    ]
    if not result.changes:
        return "\n".join(out) + "\n"
    rows: dict[tuple[str, str], dict[str, int]] = {}
    for c in result.changes:
        key = (c.environment or "(all)", c.tenant or "(shared)")
        rows.setdefault(key, dict.fromkeys(KINDS, 0))[c.kind] += 1
    out += ["", "| environment | tenant | added | changed | removed |", "| --- | --- | ---: | ---: | ---: |"]
    for (env, tenant), n in sorted(rows.items(), key=lambda kv: (result.env_rank(kv[0][0]), kv[0][1])):
        out.append(f"| {env} | {tenant} | {n['added']} | {n['changed']} | {n['removed']} |")
    if result.roots:
        out += ["", "Terraform roots to plan: " + ", ".join(f"`{r.root}`" for r in result.roots)]
    if result.removed_roots:
        out += [
            "",
            "**Removed Terraform roots** (destroy them by hand before merging): " + ", ".join(f"`{r}`" for r in result.removed_roots),
        ]
    if result.migrations:
        out += ["", "Migrations changed: " + ", ".join(f"`{s}`" for s in result.migrations)]
    return "\n".join(out) + "\n"


def roots_json(roots: list[Root]) -> str:
    return json.dumps(
        {"count": len(roots), "include": [asdict(r) for r in roots], "roots": [r.root for r in roots]},
        sort_keys=True,
        separators=(",", ":"),
    )
