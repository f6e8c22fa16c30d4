"""The AWS Organization the catalog implies: OUs, accounts (adopted or vended) and their checks.

Targets render it (``targets/terraform/org.py``) and derive guardrails from it
(``targets/policy_as_code.py``); both need the same layout and the same global-service list,
so they live here, pure and without I/O. Catalog mistakes (an e-mail pattern that gives two
accounts one address, an account id claimed by two owners) become located errors.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

from generator.catalog import spec
from generator.catalog.load import Catalog, Entry
from generator.errors import CatalogError, Location
from generator.model.resolve import Model

#: Directory and state-key prefix of the organization root; no environment may take the name.
ORG_ROOT = "org"
ROOT_OU = "root"
SECURITY_OU = "security"
SUSPENDED_OU = "suspended"
#: AWS limits: account name length, root e-mail length.
MAX_ACCOUNT_NAME = 50
MAX_EMAIL = 64
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_FIELDS = frozenset({"org", "tenant", "env"})
#: Tags every Terraform root applies to every resource (provider default_tags, see
#: ``targets/terraform/target.py`` ``_tags``); a required tag outside them blocks every create.
APPLIED_TAGS = frozenset({"tenant", "environment", "owner", "cost-center", "managed-by"})

#: Services with a single global endpoint (in us-east-1) that a region-deny SCP must exempt,
#: after AWS Organizations' documented example ("Deny access to AWS based on the requested
#: AWS Region"); the Rego region rule exempts the Terraform types of the same services.
GLOBAL_ACTIONS: tuple[str, ...] = (
    "a4b:*",
    "acm:*",
    "aws-marketplace-management:*",
    "aws-marketplace:*",
    "aws-portal:*",
    "budgets:*",
    "ce:*",
    "chime:*",
    "cloudfront:*",
    "config:*",
    "cur:*",
    "directconnect:*",
    "ec2:DescribeRegions",
    "ec2:DescribeTransitGateways",
    "ec2:DescribeVpnGateways",
    "fms:*",
    "globalaccelerator:*",
    "health:*",
    "iam:*",
    "importexport:*",
    "kms:*",
    "mobileanalytics:*",
    "networkmanager:*",
    "organizations:*",
    "pricing:*",
    "route53:*",
    "route53domains:*",
    "route53-recovery-cluster:*",
    "route53-recovery-control-config:*",
    "route53-recovery-readiness:*",
    "s3:GetAccountPublic*",
    "s3:ListAllMyBuckets",
    "s3:ListMultiRegionAccessPoints",
    "s3:PutAccountPublic*",
    "shield:*",
    "sts:*",
    "support:*",
    "trustedadvisor:*",
    "waf-regional:*",
    "waf:*",
    "wafv2:*",
    "wellarchitected:*",
)
#: Terraform resource type prefixes of those global services (the edge region may hold them).
GLOBAL_TYPE_PREFIXES: tuple[str, ...] = (
    "aws_acm_",
    "aws_budgets_",
    "aws_ce_",
    "aws_cloudfront_",
    "aws_iam_",
    "aws_organizations_",
    "aws_route53",
    "aws_shield_",
    "aws_wafv2_",
    "aws_waf_",
)


@dataclass(frozen=True)
class Ou:
    key: str
    name: str
    parent: str  # another Ou's key, or ROOT_OU


@dataclass(frozen=True)
class Account:
    """One ``aws_organizations_account``: vended (``adopt`` None) or adopted by id."""

    address: str
    role: str  # tenant name, or the platform role (log-archive, shared-services, pool-<tier>, ...)
    env: str  # environment, or ORG_ROOT for organization-wide accounts
    name: str
    email: str
    ou: str
    tags: dict[str, str]
    adopt: str | None
    at: Location
    tenant: bool = False
    #: A removed tenant's account (catalog/retired-accounts.yaml): kept, in OU suspended.
    retired: bool = False


@dataclass
class Organization:
    management_account: str
    ous: list[Ou] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    settings: spec.AwsOrganization | None = None

    def ou(self, key: str) -> Ou:
        return next(o for o in self.ous if o.key == key)


def slug(*parts: str) -> str:
    """A Terraform identifier from catalog names (``-`` becomes ``_``)."""
    return "__".join(p.replace("-", "_") for p in parts)


def env_ou(env: str) -> str:
    return slug("env", env)


def tier_ou(env: str, tier: str) -> str:
    return slug("env", env, tier)


def layout(model: Model) -> tuple[Organization | None, list[CatalogError]]:
    """The organization of ``model`` (None when platform.yaml has no ``aws_organization``)
    and every problem with it, located at the catalog line to change."""
    platform = model.platform
    org = platform.aws_organization
    if org is None:
        return None, []
    catalog = model.catalog
    p_entry: Entry[spec.Platform] = catalog.platform
    errors: list[CatalogError] = []
    if platform.management_account is None:
        errors.append(
            CatalogError(
                p_entry.locate("aws_organization", key=True),
                "aws_organization needs management_account (the account that applies rendered/terraform/org)",
            )
        )
    for i, tag in enumerate(org.required_tags):
        if tag not in APPLIED_TAGS:
            errors.append(
                CatalogError(
                    p_entry.locate("aws_organization", "required_tags", i),
                    f"required tag '{tag}' is not one the Terraform roots apply ({', '.join(sorted(APPLIED_TAGS))}); its SCP would refuse every create",
                )
            )
    out = Organization(platform.management_account or "", settings=org)
    out.ous += [Ou(SECURITY_OU, SECURITY_OU, ROOT_OU), Ou(SUSPENDED_OU, SUSPENDED_OU, ROOT_OU)]
    pattern_at = p_entry.locate("aws_organization", "accounts", "email_pattern")
    seen_ids: dict[str, tuple[tuple[str, str], Location, str]] = {}
    emails: dict[str, Account] = {}
    addresses: set[str] = set()

    def owner_label(identity: tuple[str, str]) -> str:
        if identity[0] == "retired":
            return f"the retired account {identity[1]} (catalog/retired-accounts.yaml)"
        return f"tenant '{identity[1]}'" if identity[0] == "tenant" else f"the platform's {identity[1]} account"

    def claim(identity: tuple[str, str], account_id: str | None, at: Location) -> bool:
        """False when ``account_id`` is already this identity's (one account, many entries)."""
        if account_id is None:
            return True
        first = seen_ids.get(account_id)
        if first is None:
            seen_ids[account_id] = (identity, at, owner_label(identity))
            return True
        if first[0] != identity:
            errors.append(
                CatalogError(
                    at,
                    f"account {account_id} of {owner_label(identity)} already belongs to {first[2]} ({first[1]}); every owner needs its own account",
                )
            )
        return False

    def add(
        identity: tuple[str, str], role: str, env: str, ou: str, account_id: str | None, at: Location, payer: spec.Platform | spec.Tenant
    ) -> None:
        if not claim(identity, account_id, at):
            return
        name = f"{platform.organization}-{role}" if env == ORG_ROOT else f"{platform.organization}-{role}-{env}"
        email = _email(org.accounts.email_pattern, platform.organization, role, env, pattern_at, errors)
        account = Account(
            address=slug(role) if env == ORG_ROOT else slug(role, env),
            role=role,
            env=env,
            name=name,
            email=email,
            ou=ou,
            tags={"tenant": role, "environment": env, "owner": payer.owner, "cost-center": payer.cost_center},
            adopt=account_id,
            at=at,
            tenant=identity[0] == "tenant",
        )
        if len(name) > MAX_ACCOUNT_NAME:
            errors.append(
                CatalogError(at, f"account name '{name}' has {len(name)} characters; AWS allows {MAX_ACCOUNT_NAME} (use shorter names)")
            )
        if email:
            other = emails.setdefault(email, account)
            if other is not account:
                errors.append(
                    CatalogError(
                        pattern_at,
                        f"email_pattern gives account '{name}' the e-mail {email}, already the e-mail of account '{other.name}'; "
                        "include {tenant} and {env} in the pattern",
                    )
                )
        if account.address in addresses:  # a set: at 10,000 tenants a scan per account was ~4.5 million comparisons
            errors.append(CatalogError(at, f"account '{name}' gets the Terraform address {account.address} of another account; rename one"))
        addresses.add(account.address)
        out.accounts.append(account)

    if platform.management_account is not None:
        claim(("platform", "management"), platform.management_account, p_entry.locate("management_account"))
    # Retired accounts first: a tenant that names one is the claim reported, at its own line.
    retired = catalog.single("retired_accounts")
    if retired is not None:
        for i, r in enumerate(retired.spec.accounts):
            claim(("retired", f"{r.tenant}/{r.environment}"), r.account, retired.locate("accounts", i))
    add(
        ("platform", "log-archive"),
        "log-archive",
        ORG_ROOT,
        SECURITY_OU,
        org.log_archive_account,
        p_entry.locate("aws_organization", "log_archive_account"),
        platform,
    )
    add(
        ("platform", "audit"),
        "audit",
        ORG_ROOT,
        SECURITY_OU,
        org.audit_account,
        p_entry.locate("aws_organization", "audit_account"),
        platform,
    )
    tiers_by_env: dict[str, set[str]] = {}
    for env in model.environments:
        e_entry = catalog.environments[env.name]
        if env.name == ORG_ROOT:
            errors.append(
                CatalogError(
                    e_entry.locate("name"),
                    f"environment name '{ORG_ROOT}' is reserved for the organization root (rendered/terraform/{ORG_ROOT})",
                )
            )
        for key in ("region", "dr_region"):
            if getattr(env.aws, key) not in env.aws.allowed_regions:
                errors.append(
                    CatalogError(
                        e_entry.locate("aws", "allowed_regions"),
                        f"allowed_regions must include aws.{key} '{getattr(env.aws, key)}': the region SCP would deny the environment its own region",
                    )
                )
        out.ous.append(Ou(env_ou(env.name), env.name, ROOT_OU))
        add(
            ("platform", "shared-services"),
            "shared-services",
            env.name,
            env_ou(env.name),
            env.accounts.shared_services,
            e_entry.locate("accounts", "shared_services"),
            platform,
        )
        add(
            ("platform", "dr-verify"),
            "dr-verify",
            env.name,
            env_ou(env.name),
            env.accounts.dr_verify,
            e_entry.locate("accounts", "dr_verify"),
            platform,
        )
        tiers = tiers_by_env.setdefault(env.name, set())
        for tier, account_id in env.accounts.pools.items():
            tiers.add(tier)
            role = f"pool-{tier}"
            add(
                ("platform", role), role, env.name, tier_ou(env.name, tier), account_id, e_entry.locate("accounts", "pools", tier), platform
            )
        for d in model.in_environment(env.name):
            if d.dedicated:
                tiers.add(d.tier.name)
                t_entry = catalog.tenants[d.name]
                adopt = d.tenant.accounts.get(env.name)
                at = t_entry.locate("accounts", env.name) if adopt is not None else t_entry.locate("name")
                recorded = d.tenant.vended_accounts.get(env.name)
                if adopt is None and recorded is not None:  # vended, id recorded: still its own
                    claim(("tenant", d.name), recorded, t_entry.locate("vended_accounts", env.name))
                add(("tenant", d.name), d.name, env.name, tier_ou(env.name, d.tier.name), adopt, at, d.tenant)
        out.ous += [Ou(tier_ou(env.name, tier), f"{env.name}-{tier}", env_ou(env.name)) for tier in sorted(tiers)]
    _retired(catalog, out, errors)
    # One pattern mistake shows in every account it names: report it once, at the pattern.
    at_pattern = [e for e in errors if e.location == pattern_at]
    return out, [e for e in errors if e.location != pattern_at] + at_pattern[:1]


def _retired(catalog: Catalog, out: Organization, errors: list[CatalogError]) -> None:
    """Removed tenants' accounts stay in the root, moved to OU ``suspended`` (same address, name
    and e-mail, so the plan only changes ``parent_id``) until closed by hand; never destroyed."""
    entry = catalog.single("retired_accounts")
    if entry is None:
        return
    taken = {a.address for a in out.accounts}
    for i, r in enumerate(entry.spec.accounts):
        at = entry.locate("accounts", i)
        address = slug(r.tenant, r.environment)
        if address in taken:
            errors.append(
                CatalogError(
                    at,
                    f"retired account {r.tenant}/{r.environment} has the Terraform address of a live account "
                    f"({address}); a returning tenant adopts it by id (tenants/{r.tenant}.yaml accounts) and this entry goes",
                )
            )
            continue
        tags = {"tenant": r.tenant, "environment": r.environment, "owner": r.owner, "cost-center": r.cost_center}
        taken.add(address)
        out.accounts.append(
            Account(address, r.tenant, r.environment, r.name, r.email, SUSPENDED_OU, tags, None, at, tenant=True, retired=True)
        )


def _email(pattern: str, org: str, tenant: str, env: str, at: Location, errors: list[CatalogError]) -> str:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
    except ValueError as exc:
        errors.append(CatalogError(at, f"email_pattern is not a valid pattern: {exc}"))
        return ""
    unknown = sorted(fields - _FIELDS)
    if unknown:
        errors.append(
            CatalogError(
                at, f"email_pattern uses unknown field(s) {', '.join('{' + u + '}' for u in unknown)}; use {{org}}, {{tenant}} and {{env}}"
            )
        )
        return ""
    email = pattern.format(org=org, tenant=tenant, env=env)
    if not _EMAIL.fullmatch(email) or len(email) > MAX_EMAIL:
        errors.append(
            CatalogError(
                at, f"email_pattern gives '{email}' for {tenant} in {env}, not an e-mail address of at most {MAX_EMAIL} characters"
            )
        )
        return ""
    return email
