"""``companyos move-tenant``: move a tenant to another cell of an environment, plan first.

A tenant's cell is a record in ``catalog/networks.yaml`` that nothing changes implicitly.
Moving one recreates its Applications and namespace on another cluster, so the command
renders the Argo CD files before and after the move in memory and prints what changes
(files, Applications, clusters) before it records anything; ``--dry-run`` stops there.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path

from generator import pipeline
from generator.catalog.load import Catalog, Entry
from generator.errors import CatalogError, CatalogErrors, UsageError
from generator.formats.templating import Templates
from generator.model import naming, networks
from generator.model.resolve import resolve
from generator.ops.allocate import set_cell
from generator.output.atomic import write_atomic
from generator.targets.argocd import target as argocd


@dataclass(frozen=True)
class Move:
    tenant: str
    env: str
    source: str
    target: str
    #: path -> "added" | "removed" | "changed", Argo CD files only (nothing else reads cells).
    files: dict[str, str]
    applications: tuple[str, ...]
    from_cluster: str
    to_cluster: str

    def plan(self) -> list[str]:
        """The migration plan, one line each, in the order an operator reads it."""
        lines = [
            f"move tenant '{self.tenant}' in '{self.env}' from cell {self.source} ({self.from_cluster}) to cell {self.target} ({self.to_cluster})",
            f"  Applications recreated on {self.to_cluster} and deleted from {self.from_cluster}: "
            + (", ".join(self.applications) or "none"),
            f"  namespace {naming.namespace(self.tenant)} and its fence (quota, limits, network policy, secret store) recreated on {self.to_cluster}",
            "  data stores, queues, IAM roles and the VPC stay where they are (cells share the environment's network plan)",
            "  rendered files:",
        ]
        lines += [f"    {kind:<8} {path}" for path, kind in sorted(self.files.items())]
        lines.append(f"  record: {networks.NETWORKS_PATH} environments.{self.env}.cells.{self.tenant}: {self.source} -> {self.target}")
        return lines


def plan_move(root: Path, tenant: str, env: str, cell: str) -> tuple[Catalog, Move]:
    """Check the move and work out what it changes; raise UsageError or CatalogErrors."""
    catalog = pipeline.load(root)
    env_entry = catalog.environments.get(env)
    if env_entry is None:
        raise UsageError(f"unknown environment '{env}' (expected one of: {', '.join(sorted(catalog.environments))})")
    if tenant not in catalog.tenants:
        raise UsageError(f"unknown tenant '{tenant}'")
    if env not in catalog.tenants[tenant].spec.environments:
        raise UsageError(f"tenant '{tenant}' is not deployed to '{env}'")
    cells = networks.cells(env_entry.spec)
    names = [c.name for c in cells]
    if cell not in names:
        raise UsageError(f"unknown cell '{cell}' in '{env}' (cells: {', '.join(names)})")
    source = networks.tenant_cell(catalog, env, tenant)
    if source == cell:
        raise UsageError(f"tenant '{tenant}' already runs in cell '{cell}' of '{env}'")
    moved = _with_cell(catalog, env, tenant, cell)
    errors = networks.capacity_errors(moved)
    if errors:
        raise CatalogErrors(errors)
    before, after = _argocd_files(catalog, env), _argocd_files(moved, env)
    files = {p: "removed" for p in before.keys() - after.keys()}
    files.update({p: "added" for p in after.keys() - before.keys()})
    files.update({p: "changed" for p in before.keys() & after.keys() if before[p] != after[p]})
    model = resolve(catalog)
    services = next((d.services for d in model.in_environment(env) if d.name == tenant), ())
    environment = env_entry.spec
    return moved, Move(
        tenant=tenant,
        env=env,
        source=source,
        target=cell,
        files=files,
        applications=tuple(naming.application_name(env, tenant, s.name) for s in services),
        from_cluster=networks.cell_cluster(model.platform, environment, source),
        to_cluster=networks.cell_cluster(model.platform, environment, cell),
    )


def move_tenant(root: Path, tenant: str, env: str, cell: str, *, write: bool = True) -> Move:
    """Plan the move and, unless ``write`` is False, record it in ``catalog/networks.yaml``
    (ruamel round-trip: one line changes). ``companyos render`` then writes the files."""
    _, move = plan_move(root, tenant, env, cell)
    if write:
        from ruamel.yaml import YAML

        path = root / networks.NETWORKS_PATH
        yaml = YAML(typ="rt")
        yaml.preserve_quotes = True
        yaml.width = 4096
        yaml.indent(mapping=2, sequence=4, offset=2)
        data = yaml.load(path.read_text(encoding="utf-8"))
        set_cell(data["environments"][env], tenant, cell)
        out = io.StringIO()
        yaml.dump(data, out)
        write_atomic(path, out.getvalue())
    return move


def _with_cell(catalog: Catalog, env: str, tenant: str, cell: str) -> Catalog:
    """A copy of ``catalog`` whose networks record puts ``tenant`` in ``cell`` (in memory)."""
    entry = networks.networks_entry(catalog)
    if entry is None:
        raise CatalogErrors([CatalogError(catalog.platform.locate(), f"{networks.NETWORKS_PATH} is missing")])
    nets = entry.spec
    block = nets.environments[env]
    records = dict(block.cells)
    if len(networks.cells(catalog.environments[env].spec)) > 1:
        records[tenant] = cell
    new_block = block.model_copy(update={"cells": records})
    new_nets = nets.model_copy(update={"environments": {**nets.environments, env: new_block}})
    entries = {**catalog.entries, "networks": {"networks": Entry(new_nets, entry.doc)}}
    return dataclasses.replace(catalog, entries=entries)


def _argocd_files(catalog: Catalog, env: str) -> dict[str, str]:
    """Path -> text of the Argo CD files of ``env`` (the only target that reads cells)."""
    model = resolve(catalog)
    return {f.path: f.text for f in argocd.render(model, Templates(model.templates)) if f.environment == env}
