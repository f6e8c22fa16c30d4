"""What a tenant request is and how it is checked against the catalog before anything is written."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.catalog import spec
from generator.errors import UsageError
from generator.model.resolve import promotion_order

TEMPLATE_DIR = "templates/tenant"


TENANTS_DIR = "tenants"


ANSWERS_DIR = "tenants/.copier-answers"


#: Folders whose uncommitted changes would get mixed into the tenant's commit (or make
#: the recorded template version a lie), so new-tenant refuses to run over them.
CLEAN_FOLDERS = ("catalog", "tenants", "environments", "rendered", ".github", TEMPLATE_DIR)


def tenant_path(name: str) -> str:
    return f"{TENANTS_DIR}/{name}.yaml"


def answers_path(name: str) -> str:
    return f"{ANSWERS_DIR}/{name}.yml"


def branch_name(name: str) -> str:
    """The branch new-tenant creates; one per tenant, so two onboardings never collide."""
    return f"tenant/{name}"


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
    #: platform.yaml has aws_organization: a dedicated tenant without ids gets vended accounts.
    vends_accounts: bool = False

    @classmethod
    def of(cls, catalog: Any) -> CatalogFacts:
        envs = {n: e.spec for n, e in catalog.environments.items()}
        return cls(
            tiers=tuple(sorted(catalog.tiers)),
            dedicated_tiers=tuple(sorted(n for n, t in catalog.tiers.items() if t.spec.isolation == "dedicated")),
            environments=tuple(promotion_order(envs)),
            services=tuple(sorted(catalog.services)),
            tenants=tuple(sorted(catalog.tenants)),
            vends_accounts=catalog.platform.spec.aws_organization is not None,
        )

    def template_data(self) -> dict[str, Any]:
        """The hidden ``known_*`` questions of copier.yml (help, defaults, validators)."""
        return {
            "known_tiers": list(self.tiers),
            "dedicated_tiers": list(self.dedicated_tiers),
            "known_environments": list(self.environments),
            "known_services": list(self.services),
            "vends_accounts": self.vends_accounts,
        }


def known_list(kind: str, names: Sequence[str]) -> str:
    return f"known {kind}: {', '.join(names) or 'none defined'}"


def check_name(root: Path, name: str, facts: CatalogFacts) -> list[str]:
    if not spec.is_valid_name(name):
        return [
            f"'{name}' is not a valid tenant name: use 2-20 lowercase letters, digits and '-', "
            "starting with a letter and not ending with '-'"
        ]
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
        problems.append("missing --tier (" + known_list("tiers", facts.tiers) + ")")
    elif request.tier not in facts.tiers:
        problems.append(f"unknown tier '{request.tier}' ({known_list('tiers', facts.tiers)})")
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
            problems.append(f"unknown environment '{env}' ({known_list('environments', facts.environments)})")
    for kind, names in (("environment", envs), ("service", services)):
        dupes = sorted({n for n in names if list(names).count(n) > 1})
        if dupes:
            problems.append(f"{kind} listed more than once: {', '.join(dupes)}")
    if not services:
        problems.append("--services is empty")
    for svc in services:
        if svc not in facts.services:
            problems.append(f"unknown service '{svc}' ({known_list('services', facts.services)})")
    dedicated = request.tier in facts.dedicated_tiers
    for env, account in sorted(request.accounts.items()):
        if env not in envs:
            problems.append(f"--account for environment '{env}', which the tenant is not deployed to")
        if not _matches(spec.AccountId, account):
            lost_zero = account.isdigit() and len(account) < 12  # YAML read an unquoted id as a number
            hint = f" (got {len(account)}; an unquoted id loses its leading 0: write it quoted, '{account.zfill(12)}')" if lost_zero else ""
            problems.append(f"--account {env}={account}: an AWS account id is 12 digits{hint}")
    if dedicated:
        missing = [e for e in envs if e not in request.accounts]
        if missing and not facts.vends_accounts:  # else the org root vends the missing ones
            problems.append(
                f"tier '{request.tier}' is dedicated: give the tenant's own AWS account per environment with "
                + " ".join(f"--account {e}=<12-digit id>" for e in missing)
            )
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


def answers_data(request: TenantRequest, facts: CatalogFacts) -> dict[str, Any]:
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


def request_from_answers(answers: dict[str, Any]) -> TenantRequest:
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
