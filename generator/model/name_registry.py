"""One namespace of names: every object the render names, with the catalog entry that owns it.

Targets derive names by concatenation (``<env>-<tenant>-<service>``, ``<org>-<env>-<tenant>``),
so two different owners can derive the same string: tenant ``namespace-acme`` with service
``api`` and tenant ``acme-api`` both get the Application ``dev-namespace-acme-api``; a tenant
named like a pool gets the pool's KMS alias. Such a clash renders fine and breaks at apply
or sync time, when one object silently replaces the other. Here the names are derived from
the catalog with the same ``naming`` functions the targets call, and each (kind, scope, name)
may have one owner. A clash is reported at the later owner's catalog line and names both.

Cost: a handful of dict insertions per deployment and service; locations and messages are
only built for clashes. With the catalog's memo (``catalog.file_memo``) a tenant's names are
derived only when its file changed: 8-byte digests prove the rest apart (and a sequence of
digests a clean run found all different is not compared again).
"""

from __future__ import annotations

import array
import hashlib
from collections.abc import Iterator
from typing import Any, NamedTuple

from generator.catalog import spec
from generator.catalog.file_memo import FileMemo
from generator.catalog.load import Catalog, Entry
from generator.errors import CatalogError
from generator.model import naming, networks

#: Who derives a name: ("platform", env) | ("pool", tier, env) | ("tenant", name, part).
#: ``part`` is "" for the tenant as a whole, "service 'api'", "origin record", ... Two
#: claims with the same identity are the same object, not a clash. A tenant's identity
#: leaves out the environment: every name of a tenant object contains it (or is scoped
#: by the environment's cluster), so one owner serves all of them.
Identity = tuple[str, ...]


class Owner(NamedTuple):
    identity: Identity
    entry: Entry[Any]
    keypath: tuple[str | int, ...]
    detail: str = ""


#: Longest name AWS or Kubernetes accepts for a kind; longer ones fail at apply or sync.
MAX_LENGTH = {
    "IAM role": 64,
    "S3 bucket": 63,
    "RDS instance": 63,
    "SQS queue": 80,
    "AWS Budgets budget": 100,
    "WAF web ACL": 128,
    "Kubernetes namespace": naming.MAX_LABEL,
    "Argo CD Application": naming.MAX_LABEL,  # becomes the app.kubernetes.io/instance label
    "Argo CD AppProject": naming.MAX_LABEL,
}
SHORTEST_LIMIT = min(MAX_LENGTH.values())

#: The SecurityGroupPolicy in every tenant namespace (targets/argocd/namespaces.py).
SECURITY_GROUP_POLICY = "tenant-pods"


def isolation_names(platform: spec.Platform, env: str, owner: str) -> dict[str, str]:
    """Names of the isolation objects of a tenant (or a pool, ``owner`` = ``pool-<tier>``):
    the pod and ALB security groups in the shared VPC, the cache's security group and the
    regional WAF web ACL on the ALB (targets/terraform/isolation.py; docs/isolation.md)."""
    prefix = naming.resource_prefix(platform, env, owner)
    return {"pods": f"{prefix}-pods", "alb": f"{prefix}-alb", "cache": f"{prefix}-cache", "origin_waf": f"{prefix}-origin"}


class NameRegistry:
    """(kind, scope, name) -> first owner; clashes and over-long names become errors."""

    def __init__(self) -> None:
        self.owners: dict[tuple[str, str, str], Owner] = {}
        self.errors: list[CatalogError] = []

    def claim(self, kind: str, name: str, owner: Owner, scope: str = "") -> None:
        self.claim_all([((kind, scope, name), owner)])

    def claim_all(self, claims: list[tuple[tuple[str, str, str], Owner]]) -> None:
        """The hot path: one dict operation per name; messages only for problems."""
        setdefault = self.owners.setdefault
        for key, owner in claims:
            first = setdefault(key, owner)
            if first is not owner and first.identity != owner.identity:
                self._clash(key, owner, first)
            elif len(key[2]) > SHORTEST_LIMIT:
                self._too_long(key, owner)

    def _too_long(self, key: tuple[str, str, str], owner: Owner) -> None:
        kind, _scope, name = key
        limit = MAX_LENGTH.get(kind)
        if limit is not None and len(name) > limit and self.owners[key] is owner:
            self.errors.append(
                CatalogError(
                    owner.entry.locate(*owner.keypath),
                    f"{kind} '{name}' of {describe(owner)} is {len(name)} characters; at most {limit} are allowed (use shorter names)",
                )
            )

    def _clash(self, key: tuple[str, str, str], owner: Owner, first: Owner) -> None:
        kind, scope, name = key
        where = f" ({scope})" if scope else ""
        self.errors.append(
            CatalogError(
                owner.entry.locate(*owner.keypath),
                f"{kind} '{name}'{where} of {describe(owner)} collides with {describe(first)} "
                f"({first.entry.locate(*first.keypath)}); rename one of them",
            )
        )


def describe(owner: Owner) -> str:
    ident = owner.identity
    if ident[0] == "platform":
        text = "the platform" if ident[1] == "*" else f"the platform in environment '{ident[1]}'"
    elif ident[0] == "pool":
        text = f"the pool of tier '{ident[1]}' in environment '{ident[2]}'"
    else:
        text = f"tenant '{ident[1]}' {ident[2]}" if ident[2] else f"tenant '{ident[1]}'"
    return f"{text} ({owner.detail})" if owner.detail else text


def check_names(catalog: Catalog) -> list[CatalogError]:
    """Reserved tenant names and every name clash, in catalog order (platform objects first)."""
    platform_entry = catalog.single("platform")
    if platform_entry is None:
        return []
    platform: spec.Platform = platform_entry.spec
    registry = NameRegistry()
    errors = list(_reserved(catalog, platform))
    refused = {e.location.path for e in errors}
    envs = catalog.environments
    for env_name, env_entry in envs.items():
        _platform_names(registry, catalog, platform_entry, env_entry, env_name)
        for tier, _account in env_entry.spec.accounts.pools.items():
            tier_entry = catalog.tiers.get(tier)
            if tier_entry is not None and tier_entry.spec.isolation == "pooled":
                _pool_names(registry, platform, tier_entry, env_entry.spec)
    # already refused as reserved: their clashes would only repeat that
    tenants = [entry for entry in catalog.tenants.values() if entry.path not in refused]
    if catalog.memo is None or not _names_apart(registry, catalog, platform, tenants, catalog.memo):
        for tenant_entry in tenants:
            _tenant_names(registry, catalog, platform, tenant_entry)
    return errors + registry.errors


def name_digest(key: tuple[str, str, str]) -> bytes:
    """8 bytes of a (kind, scope, name): equal keys have equal digests, so digests that are
    all different prove the keys are (two keys sharing one only cost the full check)."""
    return hashlib.blake2b("\0".join(key).encode("utf-8", "surrogateescape"), digest_size=8).digest()


#: The kind of proof :func:`_names_apart` keeps in the memo.
_APART = "names-apart"


def _names_apart(
    registry: NameRegistry, catalog: Catalog, platform: spec.Platform, tenants: list[Entry[spec.Tenant]], memo: FileMemo
) -> bool:
    """Whether no tenant's name is too long or claimed by anyone else, proven from each
    tenant's name digests (kept in ``memo`` by its file's identity, derived afresh and kept
    otherwise) instead of a fleet-wide table of every name and owner. False when a tenant
    has a problem of its own or two digests are equal: the full check then says which."""
    seen = array.array("Q", b"".join(map(name_digest, registry.owners)))
    for entry in tenants:
        digests = memo.get(entry.path)
        if digests is None:
            own = NameRegistry()
            _tenant_names(own, catalog, platform, entry)
            if own.errors:
                return False
            digests = b"".join(map(name_digest, own.owners))
            memo.put(entry.path, digests)
        seen.frombytes(digests)
    # the very sequence a clean run found all different (an edit that renames nothing keeps
    # it): ~0.2 s of a set of a million digests at 10,000 tenants not built again
    proof = hashlib.sha256(seen).digest()
    if memo.holds(_APART, proof):
        return True
    if not all_different(seen):
        return False
    memo.record(_APART, proof)
    return True


def all_different(digests: array.array[int]) -> bool:
    """Whether no two of ``digests`` are equal."""
    return len(set(digests)) == len(digests)


def _reserved(catalog: Catalog, platform: spec.Platform) -> Iterator[CatalogError]:
    reserved = naming.reserved_tenant_names(platform)
    for name, entry in catalog.tenants.items():
        word = naming.reserved_word(name, reserved)
        if word is not None:
            form = f"start with '{word}'" if word.endswith("-") else f"be or start with '{word}' or '{word}-'"
            yield CatalogError(
                entry.locate("name"),
                f"tenant name '{name}' is reserved: tenant names may not {form} because {reserved[word]}",
            )


def _platform_names(
    registry: NameRegistry, catalog: Catalog, platform_entry: Entry[spec.Platform], env_entry: Entry[spec.Environment], env: str
) -> None:
    platform = platform_entry.spec
    org = Owner(("platform", env), platform_entry, ("organization",))
    at_env = Owner(("platform", env), env_entry, ("name",))
    claim = registry.claim
    claim("Argo CD AppProject", naming.platform_project(platform, env), org)
    claim("Argo CD AppProject", naming.gitops_project(platform, env), org)
    claim("Argo CD Application", naming.gitops_project(platform, env), org)
    claim("Argo CD ApplicationSet", naming.applicationset_name(env), at_env)
    claim("Argo CD AppProject", naming.capacity_project(platform, env), org)
    claim("Argo CD Application", naming.capacity_application(env), at_env)
    if env_entry.spec.disaster_recovery is not None:
        claim("Argo CD Application", naming.standby_namespace_application(env), at_env)
        claim("Argo CD ApplicationSet", naming.standby_applicationset(env), at_env)
    claim("Argo CD AppProject", naming.addon_project(platform, env), org)
    for addon_entry in catalog.of("addon").values():
        addon: spec.Addon = addon_entry.spec
        if addon.environments is None or env in addon.environments:
            owner = Owner(("platform", env), addon_entry, ("name",), f"add-on '{addon.name}'")
            claim("Argo CD Application", naming.addon_application(env, addon.name), owner)
    cluster = naming.cluster_name(platform, env)
    claim("EKS cluster", cluster, org)
    # Cells beyond the first: their cluster, ApplicationSet and add-on Applications (the first
    # cell keeps the names above, so declaring cells renames nothing).
    for i, cell in enumerate(env_entry.spec.cells[1:], start=1):
        # its own identity: a clash with a platform name of the same environment is reported
        at_cell = Owner(("platform", env, f"cell {cell.name}"), env_entry, ("cells", i, "name"), f"cell '{cell.name}'")
        claim("EKS cluster", networks.cell_cluster(platform, env_entry.spec, cell.name), at_cell)
        claim("Argo CD ApplicationSet", f"{naming.applicationset_name(env)}-{cell.name}", at_cell)
        for addon_entry in catalog.of("addon").values():
            if addon_entry.spec.environments is None or env in addon_entry.spec.environments:
                claim("Argo CD Application", f"{naming.addon_application(env, addon_entry.spec.name)}-{cell.name}", at_cell)
    in_cluster = f"in cluster '{cluster}'"
    for key in ("argocd_namespace", "ingress_namespace", "monitoring_namespace"):
        claim("Kubernetes namespace", getattr(platform, key), Owner(("platform", env), platform_entry, (key,)), in_cluster)
    for ns in naming.SYSTEM_NAMESPACES:
        claim("Kubernetes namespace", ns, org, in_cluster)
    claim("Terraform root", naming.terraform_root_dir(env, naming.SHARED_ROOT), at_env)
    claim("KMS alias", naming.kms_alias(platform, env, naming.SHARED_ROOT), at_env)
    claim("CloudWatch log group", naming.log_group(platform, env, naming.PLATFORM_LOG_OWNER), at_env)
    claim("DNS name", env_entry.spec.domain, Owner(("platform", env), env_entry, ("domain",), "its Route 53 hosted zone"))
    claim("CloudWatch log group", f"/aws/route53/{env_entry.spec.domain}", Owner(("platform", env), env_entry, ("domain",)))
    _prefixed(registry, naming.resource_prefix(platform, env, "")[:-1], "shared", at_env)
    # Account-wide names, the same in every environment (one identity: the platform).
    whole = Owner(("platform", "*"), platform_entry, ("organization",))
    claim("IAM role", naming.account_role_arn("0", platform).rsplit("/", 1)[1], whole)
    for purpose in naming.CI_ROLE_PURPOSES:
        claim("IAM role", naming.ci_role_arn("0", platform, purpose).rsplit("/", 1)[1], whole)
    claim("S3 bucket", platform.terraform_state.bucket, Owner(("platform", "*"), platform_entry, ("terraform_state", "bucket")))


def _prefixed(registry: NameRegistry, prefix: str, kind: str, owner: Owner) -> None:
    for resource, suffix in naming.PREFIX_NAMES[kind]:
        registry.claim(resource, prefix + suffix, owner)


def _pool_names(registry: NameRegistry, platform: spec.Platform, tier_entry: Entry[spec.Tier], env: spec.Environment) -> None:
    tier = tier_entry.spec.name
    owner_name = naming.pool_root(tier)
    owner = Owner(("pool", tier, env.name), tier_entry, ("name",), f"pool root {owner_name}")
    claim = registry.claim
    claim("Terraform root", naming.terraform_root_dir(env.name, owner_name), owner)
    claim("Argo CD Application", naming.pool_application(env.name, tier), owner)
    claim("KMS alias", naming.kms_alias(platform, env.name, owner_name), owner)
    claim("S3 bucket", naming.bucket_name(platform, env.name, owner_name), owner)
    claim("ElastiCache replication group", naming.cache_id(env.name, owner_name), owner)
    claim("CloudWatch log group", naming.log_group(platform, env.name, owner_name), owner)
    _prefixed(registry, naming.resource_prefix(platform, env.name, owner_name), "pool", owner)
    if env.disaster_recovery is not None:
        _prefixed(registry, naming.resource_prefix(platform, env.name, owner_name), "dr_data", owner)
    claim("security group", isolation_names(platform, env.name, owner_name)["cache"], owner)


def _tenant_names(registry: NameRegistry, catalog: Catalog, platform: spec.Platform, entry: Entry[spec.Tenant]) -> None:
    tenant: spec.Tenant = entry.spec
    name = tenant.name
    tier_entry = catalog.tiers.get(tenant.tier)
    dedicated = tier_entry is not None and tier_entry.spec.isolation == "dedicated"
    prefixed = naming.PREFIX_NAMES["dedicated" if dedicated else "pooled"] if tier_entry is not None else ()
    ns = naming.namespace(name)
    whole = Owner(("tenant", name, ""), entry, ("name",))
    namespace_app = Owner(("tenant", name, "namespace Application"), entry, ("name",))
    # Per service: (name, spec, owner, secret templates' owner, database secret's owner).
    services = []
    in_namespace: list[tuple[tuple[str, str, str], Owner]] = []
    scope = f"in namespace '{ns}'"
    policies = Owner(("tenant", name, "namespace defaults"), entry, ("name",))
    for policy in naming.NAMESPACE_POLICIES:
        in_namespace.append((("NetworkPolicy", scope, policy), policies))
    for i, svc_name in enumerate(tenant.services):
        svc_entry = catalog.services.get(svc_name)
        if svc_entry is None:
            continue  # unknown service, reported by references
        svc: spec.Service = svc_entry.spec
        at = ("services", i)
        own = Owner(("tenant", name, f"service '{svc_name}'"), entry, at)
        secrets = Owner(("tenant", name, ""), entry, at, f"secret key template of service '{svc_name}' in {svc_entry.path}")
        database = Owner(("tenant", name, ""), entry, at, f"database secret of service '{svc_name}'")
        services.append((svc_name, svc, own, secrets, database))
        workload = naming.workload_name(svc_name)
        in_namespace.append((("NetworkPolicy", scope, naming.network_policy_name(workload)), own))
        in_namespace.append((("workload (app.kubernetes.io/name)", scope, workload), own))
        # claimed whether or not an environment gives the service flags: enabling them must not clash
        in_namespace.append((("NetworkPolicy", scope, naming.flagd_network_policy_name(workload)), own))
        if svc.migrations is not None and svc.uses_database:
            job = naming.migration_job_name(svc_name)
            mig = Owner(("tenant", name, f"migration Job of service '{svc_name}'"), entry, at)
            in_namespace.append((("NetworkPolicy", scope, naming.network_policy_name(job)), mig))
            in_namespace.append((("workload (app.kubernetes.io/name)", scope, job), mig))
    in_namespace.append((("SecurityGroupPolicy", scope, SECURITY_GROUP_POLICY), policies))
    reads_secrets = any(svc.secrets or svc.uses_database or svc.uses_cache for _n, svc, *_ in services)
    reader = Owner(("tenant", name, "secret-reader role"), entry, ("name",), "the role its SecretStore assumes")
    if reads_secrets:
        in_namespace.append((("SecretStore", scope, platform.secret_store), policies))
    registry.claim_all(in_namespace)  # the same in every environment's cluster
    edge = any(svc.ingress.enabled for _n, svc, *_ in services)
    for env_name in dict.fromkeys(tenant.environments):
        env_entry = catalog.environments.get(env_name)
        if env_entry is None:
            continue  # an unknown environment, reported by references
        env_spec = env_entry.spec
        env = env_spec.name
        prefix = naming.resource_prefix(platform, env, name)
        claims: list[tuple[tuple[str, str, str], Owner]] = [
            (("Argo CD AppProject", "", naming.argocd_project(name, env)), whole),
            (("Argo CD Application", "", naming.namespace_application(env, name)), namespace_app),
            (("Kubernetes namespace", f"in cluster '{naming.cluster_name(platform, env)}'", ns), whole),
            (("Terraform root", "", naming.terraform_root_dir(env, naming.tenant_root(name))), whole),
            (("KMS alias", "", naming.kms_alias(platform, env, name)), whole),
            (("CloudWatch log group", "", naming.log_group(platform, env, name)), whole),
            # DNS names do not contain the environment's name (two may share a domain).
            (
                ("DNS name", "", naming.ingress_origin_hostname(name, env_spec)),
                Owner(("tenant", name, f"origin record in '{env}'"), entry, ("name",)),
            ),
        ]
        claims += [((resource, "", prefix + suffix), whole) for resource, suffix in prefixed]
        if dedicated and env_spec.disaster_recovery is not None:
            claims += [((resource, "", prefix + suffix), whole) for resource, suffix in naming.PREFIX_NAMES["dr_data"]]
        if edge and tier_entry is not None:
            claims += [((resource, "", prefix + suffix), whole) for resource, suffix in naming.EDGE_NAMES]
        isolation = isolation_names(platform, env, name)
        in_vpc = f"in the VPC of cluster '{naming.cluster_name(platform, env)}'"
        claims.append((("security group", in_vpc, isolation["pods"]), whole))
        if edge and tier_entry is not None:
            claims.append((("security group", in_vpc, isolation["alb"]), whole))
            claims.append((("WAF web ACL", "", isolation["origin_waf"]), whole))
        if dedicated:
            claims.append((("security group", "", isolation["cache"]), whole))
            claims.append((("S3 bucket", "", naming.bucket_name(platform, env, name)), whole))
            claims.append((("ElastiCache replication group", "", naming.cache_id(env, name)), whole))
        if reads_secrets:
            claims.append((("IAM role", "", naming.secret_reader_role_name(platform, env, name)), reader))
        for svc_name, svc, own, secrets, database in services:
            claims.append((("Argo CD Application", "", naming.application_name(env, name, svc_name)), own))
            if env_spec.disaster_recovery is not None:
                standby = naming.standby_application(naming.application_name(env, name, svc_name))
                claims.append((("Argo CD Application", "", standby), own))
            claims.append((("IAM role", "", naming.irsa_role_name(platform, env, name, svc_name)), own))
            if svc.ingress.enabled:
                host = Owner(("tenant", name, f"service '{svc_name}' in '{env}'"), entry, own.keypath)
                claims.append((("DNS name", "", naming.hostname(svc_name, name, env_spec)), host))
            # A tenant's services may share a secret; two tenants may not.
            for ref in svc.secrets:
                claims.append((("Secrets Manager secret", "", naming.secret_key(ref.key, name, env)), secrets))
            if svc.uses_database:
                claims.append((("Secrets Manager secret", "", naming.db_secret_key(platform, env, name, svc_name)), database))
        registry.claim_all(claims)
