"""Terraform roots: every rendered .tf parses with python-hcl2, every module call passes
only real inputs of the pinned terraform-aws-modules version (and all required ones),
provider and Terraform pins satisfy every module's constraints, and the operating model's
guardrails show up in the parsed HCL for regulated and standard tenants in prod and dev."""

from __future__ import annotations

import json
import re
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

from generator import vendor
from generator.model import naming, networks
from generator.targets.terraform import registry
from generator.targets.terraform.modules import MODULES, PROVIDERS, TERRAFORM_VERSION
from helpers.catalog_edit import edit_yaml
from helpers.repo import snapshot

MODULE_INPUTS = vendor.terraform_data_dir() / "terraform-aws-modules-inputs.json"
#: Meta-arguments Terraform accepts on every module block.
META = {"source", "version", "providers", "count", "for_each", "depends_on", "__is_block__"}
ROOT_FILES = {"versions.tf", "backend.tf", "providers.tf", "main.tf", "outputs.tf"}


@pytest.fixture(scope="session")
def upstream() -> dict[str, Any]:
    return json.loads(MODULE_INPUTS.read_text())


@pytest.fixture(scope="session")
def tf(sample) -> dict[str, dict[str, Any]]:
    """Every rendered .tf, parsed once: path -> python-hcl2 document."""
    options = SerializationOptions(strip_string_quotes=True, with_comments=False)
    # The environments' roots; the organization root (rendered/terraform/org) has tests/targets/terraform/test_org.py.
    files = {
        p: d.decode()
        for p, d in sample.result.files.items()
        if p.startswith("rendered/terraform/") and not p.startswith("rendered/terraform/org/")
    }
    # Besides .tf, a root holds only its per-tenant records (tenants/<name>.json, read by fileset()).
    records = {p for p in files if not p.endswith(".tf")}
    assert all(re.fullmatch(r"rendered/terraform/[^/]+/[^/]+/tenants/[a-z0-9-]+\.json", p) for p in records), records
    return {path: hcl2.loads(text, serialization_options=options) for path, text in files.items() if path.endswith(".tf")}


def blocks(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    """``module``/``output``/``data`` blocks as name -> body; ``resource`` as (type, name) -> body."""
    out: dict[Any, Any] = {}
    for item in doc.get(kind, []):
        for key, body in item.items():
            if kind in ("resource", "data"):
                for name, inner in body.items():
                    out[(key, name)] = inner
            else:
                out[key] = body
    return out


def root(tf, env: str, name: str) -> dict[str, dict[str, Any]]:
    prefix = f"rendered/terraform/{env}/{name}/"
    files = {p.removeprefix(prefix): doc for p, doc in tf.items() if p.startswith(prefix)}
    assert files, prefix
    return files


# --- structure --------------------------------------------------------------------------------


def test_one_root_per_environment_pool_and_tenant_with_the_five_files(sample, tf):
    model = sample.model
    expected = set()
    for env in model.environments:
        ds = model.in_environment(env.name)
        expected.add((env.name, "shared"))
        expected |= {(env.name, f"pool-{d.tier.name}") for d in ds if not d.dedicated}
        expected |= {(env.name, f"tenant-{d.name}") for d in ds}
    found: dict[tuple[str, str], set[str]] = {}
    for path in tf:
        _, _, env, name, filename = path.split("/")
        found.setdefault((env, name), set()).add(filename)
    assert set(found) == expected
    # Beyond the five, each optional file belongs to a target with its own tests: capacity.tf
    # (test_capacity.py), alarms.tf (test_alarms.py), log_archive.tf, config.tf (one recorder per
    # account), dr.tf (environments with a standby region, test_dr_roles.py), and in the shared
    # root only addons.tf (test_addons.py), access.tf and registry.tf.
    shared_only = {"addons.tf", "access.tf", "registry.tf"}
    optional = {"capacity.tf", "alarms.tf", "log_archive.tf", "config.tf", "dr.tf"} | shared_only
    with_standby = {env.name for env in model.environments if env.disaster_recovery is not None}
    dedicated = {(d.env, f"tenant-{d.name}") for d in model.deployments if d.dedicated}
    for (env, name), files in found.items():
        assert files >= ROOT_FILES and files - ROOT_FILES <= optional, (env, name, files)
        assert (name == "shared") is (shared_only <= files), (env, name)
        assert ("dr.tf" in files) is (env in with_standby), (env, name)
        # an account of its own (shared, pool, dedicated tenant) has its Config recorder; a pooled tenant's root does not
        owns_account = name == "shared" or name.startswith("pool-") or (env, name) in dedicated
        assert ("config.tf" in files) is owns_account, (env, name)
    assert ("dev", "tenant-umbrella") not in found  # a root exists only where it has work


def test_manifest_records_root_tenant_and_environment(sample):
    entries = {p: e for p, e in sample.result.manifest["files"].items() if p.startswith("rendered/terraform/")}
    for path, entry in entries.items():
        if path.startswith("rendered/terraform/org/"):
            assert "root" not in entry and "environment" not in entry  # not an environment's root (test_org.py)
            continue
        env, name = path.split("/")[2:4]
        assert entry["root"] == naming.terraform_root_dir(env, name)
        assert entry["environment"] == env
        record = re.fullmatch(r"rendered/terraform/[^/]+/[^/]+/tenants/([a-z0-9-]+)\.json", path)
        if record:  # a tenant's record inside a shared or pool root belongs to that tenant's unit
            assert entry.get("tenant") == record.group(1)
            continue
        assert entry.get("tenant") == (name.removeprefix("tenant-") if name.startswith("tenant-") else None)
        if path.endswith("/" + registry.FILENAME):  # built by generator/targets/terraform/registry.py, no template
            assert {"catalog/platform.yaml", f"environments/{env}.yaml"} <= set(entry["sources"])
            continue
        assert any(s.startswith("templates/terraform/") for s in entry["sources"])
    acme = entries["rendered/terraform/prod/tenant-acme/main.tf"]["sources"]
    assert {"tenants/acme.yaml", "catalog/tiers/regulated.yaml", "environments/prod.yaml", "catalog/networks.yaml"} <= set(acme)


def test_backend_is_s3_with_locking_encryption_and_per_root_key(sample, tf):
    state = sample.model.platform.terraform_state
    for path, doc in tf.items():
        if not path.endswith("/backend.tf"):
            continue
        env, name = path.split("/")[2:4]
        (backend,) = doc["terraform"][0]["backend"]
        s3 = backend["s3"]
        assert s3["key"] == f"{env}/{name}/terraform.tfstate"
        assert (s3["bucket"], s3["region"], s3["dynamodb_table"]) == (state.bucket, state.region, state.dynamodb_table)
        assert s3["encrypt"] is True and s3["kms_key_id"].startswith("arn:aws:kms:")


def test_providers_assume_the_account_role_of_the_root(sample, tf):
    model = sample.model
    for env in model.environments:
        expected = {"shared": env.accounts.shared_services}
        expected |= {f"pool-{t}": a for t, a in env.accounts.pools.items()}
        expected |= {f"tenant-{d.name}": d.account_id for d in model.in_environment(env.name)}
        for name, account in expected.items():
            prefix = f"rendered/terraform/{env.name}/{name}/providers.tf"
            if prefix not in tf:
                continue
            providers = [p["aws"] for p in tf[prefix]["provider"]]
            default = [p for p in providers if "alias" not in p]
            assert len(default) == 1
            assert default[0]["assume_role"][0]["role_arn"] == naming.account_role_arn(account, model.platform)
            assert default[0]["allowed_account_ids"] == [account]
            assert default[0]["region"] == env.aws.region
            tags = default[0]["default_tags"][0]["tags"]
            assert set(tags) == {"environment", "tenant", "owner", "cost-center", "managed-by"}
            assert tags["environment"] == env.name


def test_every_provider_alias_used_is_declared(tf):
    for path, doc in tf.items():
        if not path.endswith("/main.tf"):
            continue
        providers_tf = tf[path.replace("main.tf", "providers.tf")]
        declared = {p["aws"].get("alias") for p in providers_tf["provider"]}
        used = set(re.findall(r"aws\.(dr|edge|shared)\b", json.dumps(doc)))
        assert used <= declared, path


# --- modules against the upstream inputs --------------------------------------------------------


def test_pins_equal_the_upstream_versions(upstream):
    for short, (source, version) in MODULES.items():
        assert source in upstream, short
        assert upstream[source]["version"] == version, short


def test_every_module_call_passes_only_real_inputs_and_all_required_ones(tf, upstream):
    calls = 0
    for path, doc in tf.items():
        for name, body in blocks(doc, "module").items():
            calls += 1
            entry = upstream[body["source"]]
            assert body["version"] == entry["version"], (path, name)
            args = set(body) - META
            unknown = args - set(entry["inputs"])
            missing = {k for k, v in entry["inputs"].items() if v["required"]} - args
            assert not unknown, (path, name, sorted(unknown))
            assert not missing, (path, name, sorted(missing))
    assert calls > 100


def test_module_outputs_referenced_exist(tf, upstream):
    for path, doc in tf.items():
        # A module may be declared in any file of the root (main.tf, addons.tf, capacity.tf, ...).
        folder = path.rsplit("/", 1)[0] + "/"
        sources = {name: body["source"] for p, d in tf.items() if p.startswith(folder) for name, body in blocks(d, "module").items()}
        for module, output in re.findall(r"module\.([a-z0-9_]+)\.([a-z0-9_]+)", json.dumps(doc)):
            assert module in sources, (path, module)
            assert output in upstream[sources[module]]["outputs"], (path, module, output)


def _interval(constraint: str) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """[low, high) of a Terraform version constraint made of >=, >, <, = and ~> clauses."""
    low: tuple[int, ...] = (0,)
    high: tuple[int, ...] | None = None
    for clause in constraint.split(","):
        op, version = re.fullmatch(r"\s*(>=|<=|~>|>|<|=)?\s*([0-9.]+)\s*", clause).groups()
        parts = tuple(int(p) for p in version.split("."))
        if op in (">=", None, "=", "~>"):
            low = max(low, parts + (0,) * (3 - len(parts)))
        if op == "~>":
            bump = list(parts[:-1]) if len(parts) > 1 else [parts[0]]
            bump[-1] += 1
            top = tuple(bump) + (0,) * (3 - len(bump))
            high = top if high is None else min(high, top)
        if op == "=":
            exact = parts + (0,) * (3 - len(parts))
            top = (*exact[:-1], exact[-1] + 1)
            high = top if high is None else min(high, top)
        if op == "<":
            top = parts + (0,) * (3 - len(parts))
            high = top if high is None else min(high, top)
    return low, high


def _within(inner: str, outer: str) -> bool:
    """True when every version ``inner`` allows is allowed by ``outer``."""
    lo_i, hi_i = _interval(inner)
    lo_o, hi_o = _interval(outer)
    return lo_i >= lo_o and (hi_o is None or (hi_i is not None and hi_i <= hi_o))


def test_constraint_helper():
    assert _within("~> 6.42", ">= 6.28") and not _within("~> 6.20", ">= 6.28")
    assert _within("~> 1.13.0", ">= 1.11.1") and not _within(">= 1.0", ">= 1.5.7")
    assert not _within(">= 6.0", "< 6.5")
    assert _within("= 1.13.4", "~> 1.13.0") and not _within("= 1.9.8", "~> 1.13.0")


def test_required_version_and_providers_satisfy_every_module(tf, upstream):
    for path, doc in tf.items():
        if not path.endswith("/versions.tf"):
            continue
        (terraform,) = doc["terraform"]
        assert terraform["required_version"] == TERRAFORM_VERSION
        declared = {name: spec for item in terraform["required_providers"] for name, spec in item.items() if name != "__is_block__"}
        main = tf[path.replace("versions.tf", "main.tf")]
        for name, body in blocks(main, "module").items():
            entry = upstream[body["source"]]
            assert _within(TERRAFORM_VERSION, entry["required_version"]), (path, name)
            for provider, needs in entry["required_providers"].items():
                assert provider in declared, (path, name, provider)
                assert declared[provider]["source"] == needs["source"]
                assert _within(declared[provider]["version"], needs["version"]), (path, name, provider)
        for provider, pin in declared.items():
            assert (pin["source"], pin["version"]) == PROVIDERS[provider]


# --- guardrails on the parsed HCL ----------------------------------------------------------------

CASES = [("acme", "prod"), ("acme", "dev"), ("globex", "prod"), ("globex", "dev")]


def _data_root(tf, tenant: str, env: str) -> dict[str, Any]:
    """The root holding the tenant's database and bucket: its own, or its pool's."""
    name = f"tenant-{tenant}" if tenant == "acme" else "pool-standard"
    return root(tf, env, name)["main.tf"]


@pytest.mark.parametrize(("tenant", "env"), CASES)
def test_kms_rotation(tf, tenant, env):
    kms = blocks(root(tf, env, f"tenant-{tenant}")["main.tf"], "module")["kms"]
    assert kms["enable_key_rotation"] is True
    assert kms["rotation_period_in_days"] == (90 if tenant == "acme" else 365)


@pytest.mark.parametrize(("tenant", "env"), CASES)
def test_bucket_versioning_object_lock_and_lifecycle(tf, tenant, env):
    bucket = blocks(_data_root(tf, tenant, env), "module")["bucket"]
    assert bucket["versioning"] == {"enabled": True}
    if tenant == "acme":
        assert bucket["object_lock_enabled"] is True
        assert bucket["object_lock_configuration"]["rule"]["default_retention"]["mode"] == "COMPLIANCE"
    else:
        assert "object_lock_enabled" not in bucket
    (rule,) = bucket["lifecycle_rule"]
    assert [(t["days"], t["storage_class"]) for t in rule["transition"]] == [(30, "STANDARD_IA"), (90, "GLACIER")]
    assert rule["noncurrent_version_expiration"] == {"days": 365}
    assert bucket["block_public_policy"] is True and bucket["attach_deny_insecure_transport_policy"] is True


@pytest.mark.parametrize(("tenant", "env"), CASES)
def test_database_guardrails(tf, tenant, env):
    modules = blocks(_data_root(tf, tenant, env), "module")
    db = modules["db"]
    regulated = tenant == "acme"
    assert db["multi_az"] is (env == "prod")
    # regulated tiers keep 35 days everywhere; prod's backup policy raises every tenant to 35 (environments/prod.yaml)
    assert db["backup_retention_period"] == (35 if regulated or env == "prod" else 7)
    assert db["deletion_protection"] is True and db["storage_encrypted"] is True
    assert db["publicly_accessible"] is False and db["manage_master_user_password"] is True
    # cross-region copies: the regulated tier asks for them everywhere, prod's backup policy for every tenant
    copied = regulated or env == "prod"
    assert ("db_backup_replication" in modules) is copied
    if copied:
        replication = modules["db_backup_replication"]
        assert replication["providers"] == {"aws": "${aws.dr}"}
        assert modules["kms_dr"]["providers"] == {"aws": "${aws.dr}"}
        assert replication["retention_period"] == 35


@pytest.mark.parametrize(("tenant", "env"), CASES)
def test_redis_cluster_mode_and_snapshots(tf, tenant, env):
    cache = blocks(_data_root(tf, tenant, env), "module")["cache"]
    assert cache["cluster_mode_enabled"] is True and cache["transit_encryption_enabled"] is True
    assert cache["snapshot_retention_limit"] >= 1


@pytest.mark.parametrize(("tenant", "env"), CASES)
def test_log_retention_follows_the_environment(tf, tenant, env):
    days = 90 if env == "prod" else 14
    tenant_main = root(tf, env, f"tenant-{tenant}")["main.tf"]
    assert blocks(tenant_main, "resource")[("aws_cloudwatch_log_group", "app")]["retention_in_days"] == days
    shared = blocks(root(tf, env, "shared")["main.tf"], "module")
    assert shared["eks"]["cloudwatch_log_group_retention_in_days"] == days
    assert shared["vpc"]["flow_log_cloudwatch_log_group_retention_in_days"] == days
    assert blocks(_data_root(tf, tenant, env), "module")["db"]["cloudwatch_log_group_retention_in_days"] == days


@pytest.mark.parametrize(("tenant", "env"), CASES)
def test_nat_per_zone_in_prod_single_in_dev_and_endpoints(tf, tenant, env):
    modules = blocks(_data_root(tf, tenant, env), "module")
    vpc = modules["vpc"]
    assert vpc["one_nat_gateway_per_az"] is (env == "prod")
    assert vpc["single_nat_gateway"] is (env != "prod")
    assert len(vpc["azs"]) == (3 if env == "prod" else 2)
    endpoints = modules["vpc_endpoints"]["endpoints"]
    assert {"s3", "sts", "ssm"} <= set(endpoints)
    assert endpoints["s3"]["service_type"] == "Gateway"


@pytest.mark.parametrize(("tenant", "env"), CASES)
def test_waf_and_cloudfront_front_public_services(sample, tf, tenant, env):
    d = sample.model.deployment(tenant, env)
    public = [naming.hostname(s.name, tenant, d.environment) for s in d.services if s.ingress.enabled]
    assert public
    main = root(tf, env, f"tenant-{tenant}")["main.tf"]
    modules = blocks(main, "module")
    assert modules["waf"]["scope"] == "CLOUDFRONT" and modules["waf"]["providers"] == {"aws": "${aws.edge}"}
    cdn = modules["cdn"]
    assert cdn["web_acl_id"] == "${module.waf.web_acl_arn}"
    assert cdn["default_cache_behavior"]["viewer_protocol_policy"] == "redirect-to-https"
    assert cdn["aliases"] == public
    assert cdn["origin"]["ingress"]["domain_name"] == naming.ingress_origin_hostname(tenant, d.environment)


def test_no_edge_without_public_services(repo, companyos):
    edit_yaml(repo / "tenants/globex.yaml", lambda d: d.setdefault("settings", {}).__setitem__("network", {"public_ingress": False}))
    assert companyos("render", cwd=repo).code == 0
    text = (repo / "rendered/terraform/prod/tenant-globex/main.tf").read_text()
    assert 'module "cdn"' not in text and 'module "waf"' not in text
    assert 'alias = "edge"' not in (repo / "rendered/terraform/prod/tenant-globex/providers.tf").read_text()


@pytest.mark.parametrize(("tenant", "env"), CASES)
def test_budget_alerts_and_anomaly_monitor_per_tenant(sample, tf, tenant, env):
    d = sample.model.deployment(tenant, env)
    resources = blocks(root(tf, env, f"tenant-{tenant}")["main.tf"], "resource")
    budget = resources[("aws_budgets_budget", "tenant")]
    assert budget["limit_amount"] == str(d.settings.budget.monthly_usd)
    assert sorted(n["threshold"] for n in budget["notification"]) == [80, 100]
    assert d.tenant.owner in budget["notification"][0]["subscriber_email_addresses"]
    monitor = resources[("aws_ce_anomaly_monitor", "tenant")]
    assert monitor["monitor_type"] == ("DIMENSIONAL" if tenant == "acme" else "CUSTOM")
    if tenant == "globex":  # pooled: the budget sees only the tenant's tagged spend
        assert budget["cost_filter"][0]["values"] == ["user:tenant$globex"]
    assert ("aws_ce_anomaly_subscription", "tenant") in resources


def test_every_shared_and_pool_account_has_a_budget_and_monitor(tf):
    for path, doc in tf.items():
        if path.endswith("/main.tf") and ("/shared/" in path or "/pool-" in path):
            resources = blocks(doc, "resource")
            assert ("aws_budgets_budget", "account") in resources, path
            assert resources[("aws_ce_anomaly_monitor", "account")]["monitor_type"] == "DIMENSIONAL"


def test_shared_root_has_eks_node_groups_fargate_and_dns(tf):
    main = root(tf, "prod", "shared")["main.tf"]
    eks = blocks(main, "module")["eks"]
    assert set(eks["eks_managed_node_groups"]) == {"system", "workloads"}
    assert "system" in eks["fargate_profiles"]
    assert eks["endpoint_public_access"] is False and eks["enable_irsa"] is True
    assert ("aws_route53_zone", "env") in blocks(main, "resource")
    assert blocks(main, "module")["vpc_dr"]["providers"] == {"aws": "${aws.dr}"}


# --- IRSA agrees with the Helm values ---------------------------------------------------------------


def test_irsa_roles_have_exactly_the_names_helm_annotates(sample, tf):
    import yaml

    checked = 0
    for d in sample.model.deployments:
        doc = root(tf, d.env, f"tenant-{d.name}")
        modules = blocks(doc["main.tf"], "module")
        outputs = blocks(doc["outputs.tf"], "output")["irsa_role_arns"]["value"]
        for service in d.services:
            values = yaml.safe_load(sample.result.files[f"rendered/helm/{d.env}/{d.name}/{service.name}.yaml"])
            annotated = values["rbac"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
            role = modules[f"irsa_{service.name}"]
            assert annotated == f"arn:aws:iam::{d.account_id}:role{role['path']}{role['name']}"
            assert role["use_name_prefix"] is False
            assert role["trust_condition_test"] == "StringEquals"
            # the environment's cluster, plus the standby cluster where the environment has one (dr.tf)
            providers = role["oidc_providers"]
            assert set(providers) == ({"shared", "standby"} if d.environment.disaster_recovery is not None else {"shared"})
            for provider in providers.values():
                assert provider["namespace_service_accounts"] == [f"{naming.namespace(d.name)}:{service.name}"]
            assert outputs[service.name] == f"${{module.irsa_{service.name}.arn}}"
            checked += 1
    assert checked == sum(len(d.services) for d in sample.model.deployments)


def test_pooled_tenant_policy_stops_at_its_prefix(tf):
    modules = blocks(root(tf, "prod", "tenant-globex")["main.tf"], "module")
    permissions = modules["irsa_api"]["inline_policy_permissions"]
    assert permissions["objects"]["resources"] == ["arn:aws:s3:::companyos-prod-pool-standard-data/tenants/globex/*"]
    assert permissions["list_prefix"]["condition"][0]["values"] == ["tenants/globex/*"]


def test_vpc_cidrs_come_from_the_allocations(sample, tf):
    nets = sample.model.catalog.single("networks").spec
    for env, block in nets.environments.items():
        for key, cidr in block.vpcs.items():
            if key == networks.DRILL_VPC:
                continue  # no root of its own: the shared root's dr.tf uses its DR twin (test_restore_drill.py)
            path = f"rendered/terraform/{env}/{key}/main.tf"
            assert blocks(tf[path], "module")["vpc"]["cidr"] == cidr


@pytest.mark.parametrize(
    ("env", "name"), [("prod", "tenant-acme"), ("dev", "tenant-acme"), ("prod", "pool-standard"), ("dev", "pool-standard")]
)
def test_data_vpcs_peer_with_the_shared_vpc_on_every_route_table(sample, tf, env, name):
    nets = sample.model.catalog.single("networks").spec
    resources = blocks(root(tf, env, name)["main.tf"], "resource")
    zones = 3 if env == "prod" else 2
    per_az = env == "prod"  # prod: a NAT gateway (and a private route table) per zone
    to_shared = resources[("aws_route", "to_shared")]
    from_shared = resources[("aws_route", "from_shared")]
    assert to_shared["count"] == (zones if per_az else 1) == from_shared["count"]
    assert to_shared["destination_cidr_block"] == nets.environments[env].vpcs["shared"]
    assert from_shared["destination_cidr_block"] == nets.environments[env].vpcs[name]
    assert from_shared["provider"] == "${aws.shared}"
    assert resources[("aws_vpc_peering_connection_accepter", "shared")]["provider"] == "${aws.shared}"


def test_no_secret_material_in_terraform(sample):
    for path, data in sample.result.files.items():
        if path.startswith("rendered/terraform/"):
            text = data.decode()
            assert not re.search(r"(?i)\b(password|secret_key|access_key|auth_token)\s*=", text), path


# --- bad input: path:line:col, exit 2, nothing written ---------------------------------------------

BAD_INPUTS = [
    pytest.param(
        "tenants/globex.yaml",
        lambda d: d.setdefault("settings", {}).setdefault("database", {}).__setitem__("instance_class", "db.r6g.16xlarge"),
        "not allowed for tier 'standard'",
        id="instance-class",
    ),
    pytest.param(
        "environments/dev.yaml",
        lambda d: d["aws"].__setitem__("region", "us-east-1"),
        "is not in this environment's allowed_regions",
        id="region",
    ),
    pytest.param(
        "tenants/acme.yaml", lambda d: d["accounts"].__setitem__("dev", "21000000010"), "does not match the pattern", id="account-id"
    ),
    pytest.param(
        "tenants/acme.yaml",
        lambda d: d["overrides"]["prod"]["database"].__setitem__("multi_az", False),
        "breaks tier 'regulated' guardrail",
        id="guardrail-override",
    ),
]


@pytest.mark.parametrize(("path", "change", "message"), BAD_INPUTS)
def test_bad_input_is_a_located_error_and_nothing_is_written(repo, companyos, path, change, message):
    edit_yaml(repo / path, change)
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    assert result.code == 2, result.out
    lines = [line for line in result.err.splitlines() if message in line]
    assert lines, result.err
    file, line, col = lines[0].split(":")[:3]
    assert file == path and int(line) > 1 and int(col) >= 1
    assert snapshot(repo) == before
    assert "Traceback" not in result.err


def test_ci_runs_a_terraform_release_the_roots_accept(sample):
    version = sample.model.platform.ci.terraform_version
    assert _within(f"= {version}", TERRAFORM_VERSION), (version, TERRAFORM_VERSION)


def test_remote_state_reads_only_outputs_the_shared_root_declares(tf):
    read = 0
    for path, doc in tf.items():
        env = path.split("/")[2]
        # every .tf of the shared root may declare outputs (dr.tf declares the standby's)
        declared = {name for p, d in tf.items() if p.startswith(f"rendered/terraform/{env}/shared/") for name in blocks(d, "output")}
        for name in re.findall(r"data\.terraform_remote_state\.shared\.outputs\.([a-z0-9_]+)", json.dumps(doc)):
            assert name in declared, (path, name)
            read += 1
        if "data" in doc:
            state = blocks(doc, "data").get(("terraform_remote_state", "shared"))
            if state:
                assert state["config"]["key"] == f"{env}/shared/terraform.tfstate"
    assert read > 0
