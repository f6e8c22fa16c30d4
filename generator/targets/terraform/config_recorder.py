"""AWS Config recorders (``config.tf``): one per account and region, so the organization rules
of ``audit.tf`` see every account's resources.

Each recorder is owned by exactly one root (:func:`recorders`): the org root records the
management, log-archive and audit accounts; the shared root its shared-services account and,
where DR is enabled, dr-verify (DR region only, its vault's); a pool root its pool account; a
dedicated tenant root its own. Pooled tenant roots record nothing (the pool root does), and a
root never records an account a higher-ranked root owns. Global resource types (IAM) are
recorded in the home region only. Recorders use the service-linked role (one per account) and
deliver to the org log bucket in log-archive (``common.org_log_bucket``), whose policy admits
``config.amazonaws.com`` from this organization only. See docs/governance.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from generator.catalog import spec
from generator.formats.templating import Templates
from generator.model import naming
from generator.model.resolve import Model
from generator.targets.base import RenderedFile
from generator.targets.common import ORG_LOG_CONFIG_PREFIX, org_log_bucket
from generator.targets.terraform.hcl import format_hcl

TEMPLATE = "terraform/config_recorder.tf.j2"
FILENAME = "config.tf"
#: Snapshots of every recorded resource, daily (changes are delivered as they happen).
SNAPSHOT_FREQUENCY = "TwentyFour_Hours"


class Provider(Protocol):
    """A ``provider "aws"`` block of a root (``target.Provider`` / ``org.Provider``)."""

    @property
    def alias(self) -> str | None: ...

    @property
    def region(self) -> str: ...

    @property
    def account(self) -> str: ...


class Root(Protocol):
    """What this module reads of a Terraform root (``target.Root``; a protocol: the target
    imports this module)."""

    kind: str
    name: str
    account: str
    env: spec.Environment
    sources: list[str]

    @property
    def providers(self) -> Sequence[Provider]: ...

    @property
    def tenant(self) -> str | None: ...

    @property
    def dir(self) -> str: ...


@dataclass(frozen=True)
class Recorder:
    """One recorder: its Terraform key, provider alias (None: the default), account, region."""

    key: str
    provider: str | None
    account: str
    region: str
    global_types: bool


def org_accounts(platform: spec.Platform) -> list[tuple[str | None, str]]:
    """(provider alias or None, account) the org root records: management, log-archive, audit."""
    settings = platform.aws_organization
    if settings is None or platform.management_account is None:
        return []
    return [(None, platform.management_account), ("log_archive", settings.log_archive_account), ("audit", settings.audit_account)]


def _provider(root: Root, alias: str | None, account: str) -> Provider | None:
    return next((p for p in root.providers if p.alias == alias and p.account == account), None)


def recorders(platform: spec.Platform, root: Root) -> list[Recorder]:
    """The recorders ``root`` owns. Ranking org > shared > pool (tier order) > dedicated tenant:
    an account a higher-ranked root records is skipped, so no account gets two recorders."""
    if org_log_bucket(platform) is None or root.kind == "pooled":
        return []
    env = root.env
    taken = {account for _, account in org_accounts(platform)}
    if root.kind in ("pool", "dedicated"):
        taken |= {env.accounts.shared_services, env.accounts.dr_verify}
    if root.kind == "pool":
        taken |= {a for t, a in env.accounts.pools.items() if naming.pool_root(t) < root.name}
    if root.kind == "dedicated":
        taken |= set(env.accounts.pools.values())
    out: list[Recorder] = []
    if root.account in taken:
        return out
    if _provider(root, None, root.account) is not None:
        out.append(Recorder("home", None, root.account, env.aws.region, True))
    dr = _provider(root, "dr", root.account)
    if dr is not None and dr.region != env.aws.region:
        out.append(Recorder("dr", "dr", root.account, dr.region, False))
    verify = _provider(root, "dr_verify", env.accounts.dr_verify)
    if root.kind == "shared" and verify is not None and verify.account not in taken | {root.account}:
        out.append(Recorder("dr_verify", "dr_verify", verify.account, verify.region, True))
    return out


def context(platform: spec.Platform, recs: list[Recorder]) -> dict[str, Any]:
    """What the template needs: the recorders, one service-linked role per account."""
    roles: dict[str, str | None] = {}
    for r in recs:
        if r.global_types:  # IAM is global: the role is made where its account's globals are
            roles.setdefault(r.key, r.provider)
    role_of = {r.account: r.key for r in recs if r.global_types}
    return {
        "organization": platform.organization,
        "bucket": org_log_bucket(platform),
        "prefix": ORG_LOG_CONFIG_PREFIX,
        "frequency": SNAPSHOT_FREQUENCY,
        "recorders": [
            {
                "key": r.key,
                "provider": r.provider,
                "account": r.account,
                "region": r.region,
                "global": r.global_types,
                "role": role_of[r.account],
            }
            for r in recs
        ],
        "roles": [{"key": k, "provider": p} for k, p in roles.items()],
    }


def org_recorders(platform: spec.Platform, region: str) -> list[Recorder]:
    """The org root's recorders: management (default provider), log-archive and audit."""
    if org_log_bucket(platform) is None:
        return []
    return [Recorder(alias or "management", alias, account, region, True) for alias, account in org_accounts(platform)]


def org_text(model: Model, templates: Templates) -> str | None:
    """``config.tf`` of the org root (applied after the bucket policy that admits Config)."""
    recs = org_recorders(model.platform, model.platform.terraform_state.region)
    if not recs:
        return None
    return format_hcl(templates.render(TEMPLATE, config=context(model.platform, recs), org_root=True))


def files(model: Model, templates: Templates, root: Root) -> Iterator[RenderedFile]:
    """``config.tf`` of a root that owns at least one recorder."""
    recs = recorders(model.platform, root)
    if not recs:
        return
    text = format_hcl(templates.render(TEMPLATE, config=context(model.platform, recs), org_root=False))
    yield RenderedFile(
        path=f"{root.dir}/{FILENAME}",
        text=text,
        sources=(*root.sources, model.source("platform", "platform"), templates.path(TEMPLATE)),
        tenant=root.tenant,
        environment=root.env.name,
        root=root.dir,
    )
