"""The pooled database's per-tenant bootstrap (targets/pool_bootstrap.py, docs/isolation.md):
one file per pooled tenant with idempotent SQL naming only that tenant, a hardened Sync hook
Job, the pool Application into ``<org>-pools``, the Terraform path from the Jobs' security group
to each pool database only; and the isolation analyzer catching a bootstrap that names,
lands in or belongs to another tenant."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
from pathlib import Path
from typing import Any

import hcl2
import kubernetes_validate
import pytest
import yaml

from generator import pipeline
from generator.errors import CatalogErrors, UsageError
from generator.formats.templating import Templates
from generator.model import naming
from generator.ops import isolation, parse_memo, pod_groups
from generator.targets import admission, common
from generator.targets import pool_bootstrap as pb
from generator.targets.argocd import target as argocd
from helpers.k8s import _crd_validator, brace_paths
from helpers.kyverno import request_refusals
from helpers.rendered import copy_rendered, write_rendered
from helpers.repo import REPO

ORG = "companyos"
POOLS_NS = "companyos-pools"
CONTROLLER = "system:serviceaccount:argocd:argocd-application-controller"


def docs_of(sample: pipeline.Build, path: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(sample.result.files[path].decode()) if d]


def pooled(sample: pipeline.Build) -> list[tuple[str, str, str]]:
    """(env, tier, tenant) of every pooled deployment of the sample, from the model."""
    return sorted((d.env, d.tier.name, d.name) for d in sample.model.deployments if not d.dedicated)


def sql_of(sample: pipeline.Build, env: str, tier: str, tenant: str) -> str:
    configmap = docs_of(sample, pb.bootstrap_path(env, tier, tenant))[0]
    return str(configmap["data"][pb.SQL_KEY])


def statements(sql: str) -> list[str]:
    """Top-level statements: ``;``-separated outside comments and ``$tag$`` bodies (a DO block is one)."""
    out, current, tag = [], [], None
    for line in sql.splitlines():
        stripped = line.strip()
        if tag is None and (not stripped or stripped.startswith("--")):
            continue
        current.append(stripped)
        for found in re.findall(r"\$[A-Za-z_]*\$", line):
            tag = None if tag == found else (found if tag is None else tag)
        if tag is None and stripped.endswith(";"):
            out.append(" ".join(current))
            current = []
    assert not current and tag is None, f"unterminated statement: {current}"
    return out


def logins(sample: pipeline.Build, env: str, tenant: str) -> set[str]:
    """The database usernames the tenant root's database secrets give its services (Terraform)."""
    text = sample.result.files[f"rendered/terraform/{env}/tenant-{tenant}/main.tf"].decode()
    return set(re.findall(r'^\s*username\s*=\s*"([a-z0-9_]+)"', text, re.MULTILINE))


# --- files ------------------------------------------------------------------------------------


def test_one_bootstrap_file_per_pooled_tenant_and_none_for_dedicated(sample: pipeline.Build) -> None:
    want = {pb.bootstrap_path(env, tier, tenant) for env, tier, tenant in pooled(sample)}
    got = {
        p
        for p in sample.result.files
        if re.fullmatch(r"rendered/argocd/[a-z]+/pools/[a-z0-9-]+/[a-z0-9-]+\.yaml", p) and not p.endswith(f"/{pb.ADMIN_FILE}")
    }
    assert got == want and len(want) >= 5
    assert not any(f"/{d.name}.yaml" in p for p in got for d in sample.model.deployments if d.dedicated)
    for path in want:
        assert [d["kind"] for d in docs_of(sample, path)] == ["ConfigMap", "Job"]
        entry = sample.result.entry(path)
        assert entry is not None and entry["target"] == pb.NAME and entry["tenant"] == Path(path).stem


def test_objects_are_valid_kubernetes_and_argo_cd(sample: pipeline.Build) -> None:
    versions = {env.name: env.kubernetes_version for env in sample.model.environments}
    application = _crd_validator("Application")
    checked = 0
    for env, tier, tenant in pooled(sample):
        for doc in docs_of(sample, pb.bootstrap_path(env, tier, tenant)):
            kubernetes_validate.validate(doc, versions[env], strict=True)
            checked += 1
        for doc in docs_of(sample, pb.application_path(env, tier)):
            assert [f"{'.'.join(map(str, e.path))}: {e.message}" for e in application.iter_errors(doc)] == []
    assert checked >= 10


# --- the SQL ----------------------------------------------------------------------------------


def test_sql_creates_the_tenants_schema_owner_and_service_logins_idempotently(sample: pipeline.Build) -> None:
    for env, tier, tenant in pooled(sample):
        sql = sql_of(sample, env, tier, tenant)
        stmts = statements(sql)
        schema, owner = pb.ident(tenant), pb.owner_role(tenant)
        assert "REVOKE ALL ON SCHEMA public FROM PUBLIC;" in stmts
        assert f'REVOKE ALL ON DATABASE "{pb.DATABASE}" FROM PUBLIC;' in stmts
        assert f'CREATE SCHEMA IF NOT EXISTS "{schema}" AUTHORIZATION "{owner}";' in stmts
        assert f'REVOKE ALL ON SCHEMA "{schema}" FROM PUBLIC;' in stmts
        owner_block = next(s for s in stmts if f'CREATE ROLE "{owner}"' in s)
        assert f"IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{owner}')" in owner_block
        assert f'CREATE ROLE "{owner}" NOLOGIN;' in owner_block
        # the logins are exactly the usernames the tenant root's database secrets name
        created = set(re.findall(r'CREATE ROLE "([a-z0-9_]+)" LOGIN;', sql))
        assert created == logins(sample, env, tenant) and created, (env, tenant)
        for role in created:
            assert role == naming.db_username(tenant, role.removeprefix(f"{schema}_"))
            block = next(s for s in stmts if f'CREATE ROLE "{role}" LOGIN' in s)
            assert f"WHERE rolname = '{role}')" in block and "IF NOT EXISTS" in block
            assert f'GRANT rds_iam TO "{role}";' in stmts
            assert f'GRANT "{owner}" TO "{role}";' in stmts
            assert f'ALTER ROLE "{role}" SET search_path = "{schema}";' in stmts
            # granted this tenant's schema and nothing else by name
            grants = [s for s in stmts if s.startswith("GRANT") and s.endswith(f'TO "{role}";')]
            assert {re.sub(r' TO "[^"]+";$', "", g) for g in grants} == {
                "GRANT rds_iam",
                f'GRANT CONNECT ON DATABASE "{pb.DATABASE}"',
                f'GRANT "{owner}"',
            }


def test_sql_forces_row_level_security_with_a_per_tenant_policy_on_shared_tables(sample: pipeline.Build) -> None:
    for env, tier, tenant in pooled(sample):
        stmts = statements(sql_of(sample, env, tier, tenant))
        loop = next(s for s in stmts if "information_schema.columns" in s)
        assert loop.startswith("DO $bootstrap$") and loop.endswith("$bootstrap$;")
        assert f"c.table_schema = '{pb.SHARED_SCHEMA}' AND c.column_name = 'tenant'" in loop
        assert "ENABLE ROW LEVEL SECURITY" in loop and "FORCE ROW LEVEL SECURITY" in loop
        drop, create = loop.index("DROP POLICY IF EXISTS %I"), loop.index("CREATE POLICY %I")
        assert drop < create, "the policy is dropped and recreated (idempotent, picks up a changed definition)"
        assert f"'tenant_{pb.ident(tenant)}'" in loop and f"'{pb.owner_role(tenant)}', '{tenant}', '{tenant}'" in loop
        assert "USING (tenant = %L) WITH CHECK (tenant = %L)" in loop


def test_every_creating_statement_is_idempotent(sample: pipeline.Build) -> None:
    for env, tier, tenant in pooled(sample):
        for stmt in statements(sql_of(sample, env, tier, tenant)):
            if stmt.startswith("CREATE "):
                assert "IF NOT EXISTS" in stmt, stmt
            if stmt.startswith("DO ") and "CREATE ROLE" in stmt:
                assert stmt.index("IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles") < stmt.index("CREATE ROLE"), stmt
            if "CREATE POLICY" in stmt:
                assert 0 <= stmt.find("DROP POLICY IF EXISTS") < stmt.index("CREATE POLICY"), stmt
            assert not stmt.startswith(("DROP TABLE", "DROP SCHEMA", "DROP ROLE", "TRUNCATE")), stmt


def test_bootstrap_of_a_tenant_names_no_other_tenant(sample: pipeline.Build) -> None:
    tenants = sorted(sample.model.tenants)
    for env, tier, tenant in pooled(sample):
        text = sample.result.files[pb.bootstrap_path(env, tier, tenant)].decode()
        for other in tenants:
            if other != tenant:
                assert not re.search(rf"\b{re.escape(pb.ident(other))}(_|\b)", text), (tenant, other)


# --- the Job and the Application --------------------------------------------------------------


def test_job_is_a_hardened_sync_hook_running_psql_with_the_pools_admin_secret(sample: pipeline.Build) -> None:
    for env, tier, tenant in pooled(sample):
        configmap, job = docs_of(sample, pb.bootstrap_path(env, tier, tenant))
        for doc in (configmap, job):
            assert doc["metadata"]["namespace"] == POOLS_NS
            assert "companyos.io/tenant" not in doc["metadata"]["labels"]  # a platform principal
        annotations = job["metadata"]["annotations"]
        assert annotations["argocd.argoproj.io/hook"] == "Sync"
        assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
        assert int(configmap["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < int(annotations["argocd.argoproj.io/sync-wave"])
        pod = job["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["command"] == ["psql"] and container["args"][:2] == ["-v", "ON_ERROR_STOP=1"]
        assert f"{pb.SQL_DIR}/{pb.SQL_KEY}" in container["args"]
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"]
        # the admin credentials arrive as a file, never as environment variables
        assert "envFrom" not in container
        assert not any("PASSWORD" in e["name"] for e in container["env"])
        variables = {e["name"]: e["value"] for e in container["env"]}
        (admin,) = [v for v in pod["volumes"] if "secret" in v]
        assert admin["secret"]["secretName"] == pb.admin_secret(tier)
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == admin["name"]]
        assert mount["readOnly"] is True
        assert variables["PGSERVICEFILE"] == f"{mount['mountPath']}/{admin['secret']['items'][0]['path']}"
        # psql of the pool's engine version by the digest catalog/platform.yaml pins for it
        pool_tf = sample.result.files[f"rendered/terraform/{env}/pool-{tier}/main.tf"].decode()
        version = re.search(r'engine_version\s*=\s*"([0-9.]+)"', pool_tf)
        assert version is not None
        digest = sample.model.platform.postgres_client.digests[version.group(1)]
        assert container["image"] == f"public.ecr.aws/docker/library/postgres:{version.group(1)}@{digest}"
        assert container["imagePullPolicy"] == "Always"
        volume = next(v for v in pod["volumes"] if v["name"] == "sql")
        assert volume["configMap"]["name"] == configmap["metadata"]["name"]


def test_pool_application_syncs_its_folder_into_the_pools_namespace(sample: pipeline.Build) -> None:
    for env, tier in sorted({(e, t) for e, t, _ in pooled(sample)}):
        (app,) = docs_of(sample, pb.application_path(env, tier))
        spec = app["spec"]
        assert spec["project"] == naming.platform_project(sample.model.platform, env)
        assert spec["destination"]["namespace"] == POOLS_NS
        assert spec["source"]["path"] == pb.pools_dir(env, tier)
        assert "CreateNamespace=true" in spec["syncPolicy"]["syncOptions"]
        assert spec["syncPolicy"]["managedNamespaceMetadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        environment = sample.model.environment(env)
        assert environment is not None
        assert pb.held(sample.model, environment, tier) is None  # the sample records everything the admin path needs
        assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
        assert "Held" not in sample.result.files[pb.application_path(env, tier)].decode()
        # the platform project admits the destination and the kinds; the root Application picks the file up
        (project,) = docs_of(sample, f"rendered/argocd/{env}/platform.yaml")
        assert spec["destination"] in project["spec"]["destinations"]
        kinds = {(k["group"], k["kind"]) for k in project["spec"]["namespaceResourceWhitelist"]}
        assert {("", "ConfigMap"), ("batch", "Job")} <= kinds
        root = next(d for d in docs_of(sample, f"rendered/argocd/{env}/bootstrap.yaml") if d["kind"] == "Application")
        include = brace_paths(root["spec"]["source"]["directory"]["include"])
        relative = pb.application_path(env, tier).removeprefix(f"rendered/argocd/{env}/")
        assert any(fnmatch.fnmatchcase(relative, g) for g in include)
        tenant_file = pb.bootstrap_path(env, tier, "x").removeprefix(f"rendered/argocd/{env}/")
        assert not any(fnmatch.fnmatchcase(tenant_file, g) for g in include), "the root app must not sync Jobs into argocd"


def test_argocd_may_create_the_pools_namespace_under_co046(sample: pipeline.Build) -> None:
    policy = next(d for d in docs_of(sample, admission.path("prod")) if d["metadata"]["name"] == "restrict-namespaces")
    (app,) = docs_of(sample, pb.application_path("prod", "standard"))
    namespace = {
        "kind": "Namespace",
        "metadata": {"name": POOLS_NS, "labels": app["spec"]["syncPolicy"]["managedNamespaceMetadata"]["labels"]},
    }
    assert request_refusals(policy, namespace, "CREATE", CONTROLLER) == []
    assert request_refusals(policy, namespace, "CREATE", "kubernetes-admin") == ["namespaces-only-from-argocd"]
    assert naming.reserved_word(POOLS_NS, naming.reserved_tenant_names(sample.model.platform)) is not None  # no tenant can be named so


def test_contracts_of_the_bootstrap_files_are_closed(sample: pipeline.Build) -> None:
    """The render succeeded (a broken strict contract fails it); each tenant file consumes the
    pools namespace (provided by the pool Application) and its kinds in the platform project."""
    templates = Templates(sample.model.templates)
    project = naming.platform_project(sample.model.platform, "prod")
    files = {f.path: f for f in pb.render(sample.model, templates)}
    consumed = {(c.kind, c.name) for c in files[pb.bootstrap_path("prod", "standard", "globex")].consumes}
    assert {("namespace", POOLS_NS), ("argocd_kind", f"{project}:batch/Job"), ("argocd_kind", f"{project}:/ConfigMap")} <= consumed
    assert ("namespace", POOLS_NS) in {(c.kind, c.name) for c in files[pb.application_path("prod", "standard")].provides}
    platform = next(f for f in argocd.render(sample.model, templates) if f.path == "rendered/argocd/prod/platform.yaml")
    assert {("argocd_kind", f"{project}:batch/Job"), ("argocd_kind", f"{project}:/ConfigMap")} <= {
        (c.kind, c.name) for c in platform.provides
    }


# --- Terraform: the Jobs' security group and the pools admitting it ----------------------------


def hcl(sample: pipeline.Build, path: str) -> dict[str, Any]:
    return parse_memo.unquote(hcl2.loads(sample.result.files[path].decode()))  # type: ignore[no-any-return]


def resources(doc: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {name: body for block in doc.get("resource", []) for t, named in block.items() if t == rtype for name, body in named.items()}


def test_shared_root_pool_admin_group_reaches_only_the_pools_on_postgres(sample: pipeline.Build) -> None:
    for env in sorted({e for e, _, _ in pooled(sample)}):
        doc = hcl(sample, f"rendered/terraform/{env}/shared/main.tf")
        group = resources(doc, "aws_security_group")["pool_admin"]
        assert group["name"] == naming.pool_admin_group(sample.model.platform, env)
        egress = resources(doc, "aws_vpc_security_group_egress_rule")
        mine = {n: b for n, b in egress.items() if "aws_security_group.pool_admin.id" in str(b["security_group_id"])}
        assert set(mine) == {"pool_admin_to_pools", "pool_admin_dns"}
        pools = mine["pool_admin_to_pools"]
        assert (pools["from_port"], pools["to_port"], pools["ip_protocol"]) == (5432, 5432, "tcp")
        tiers = sorted({t for e, t, _ in pooled(sample) if e == env})
        pool_cidrs = {t: hcl(sample, f"rendered/terraform/{env}/pool-{t}/outputs.tf") for t in tiers}
        want = {t: next(o["vpc_cidr"]["value"] for o in doc_["output"] if "vpc_cidr" in o) for t, doc_ in pool_cidrs.items()}
        assert pools["for_each"] == want
        assert (mine["pool_admin_dns"]["from_port"], mine["pool_admin_dns"]["to_port"]) == (53, 53)
        outputs = sample.result.files[f"rendered/terraform/{env}/shared/outputs.tf"].decode()
        assert 'output "pool_admin_security_group_id"' in outputs


def test_pool_database_admits_the_pool_admin_group(sample: pipeline.Build) -> None:
    for env, tier in sorted({(e, t) for e, t, _ in pooled(sample)}):
        doc = hcl(sample, f"rendered/terraform/{env}/pool-{tier}/main.tf")
        rule = resources(doc, "aws_security_group_rule")["db_from_pool_admin"]
        assert rule["type"] == "ingress" and rule["security_group_id"] == "${aws_security_group.db.id}"
        assert (rule["from_port"], rule["to_port"]) == (5432, 5432)
        shared = sample.model.environment(env)
        assert shared is not None
        assert rule["source_security_group_id"] == (
            f"{shared.accounts.shared_services}/${{data.terraform_remote_state.shared.outputs.pool_admin_security_group_id}}"
        )
    # dedicated tenants' databases do not
    for d in sample.model.deployments:
        if d.dedicated:
            assert "pool_admin" not in sample.result.files[f"rendered/terraform/{d.env}/tenant-{d.name}/main.tf"].decode()


# --- the isolation analyzer: planted faults -----------------------------------------------------


@pytest.fixture(scope="module")
def clean(sample: pipeline.Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rendered(sample, tmp_path_factory.mktemp("pool-bootstrap"))


@pytest.fixture
def tree(clean: Path, tmp_path: Path) -> Path:
    return copy_rendered(clean, tmp_path)


GLOBEX = "rendered/argocd/prod/pools/standard/globex.yaml"


def plant(root: Path, path: str, old: str, new: str) -> None:
    file = root / path
    text = file.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    file.write_text(text.replace(old, new, 1), encoding="utf-8")


def triples(findings: list[isolation.Finding]) -> set[tuple[str, str, str]]:
    return {(f.layer, f.source, f.target) for f in findings}


def test_sample_bootstrap_and_pool_admin_rule_analyze_clean(clean: Path) -> None:
    assert (clean / GLOBEX).is_file() and "db_from_pool_admin" in (clean / "rendered/terraform/prod/pool-standard/main.tf").read_text()
    findings = isolation.analyze(clean, ORG)
    assert findings == [], isolation.to_text(findings)


def test_bootstrap_naming_another_tenants_schema_is_a_path(tree: Path) -> None:
    plant(tree, GLOBEX, 'REVOKE ALL ON SCHEMA "globex" FROM PUBLIC;', 'GRANT USAGE ON SCHEMA "hooli" TO "globex__owner";')
    findings = isolation.analyze(tree, ORG)
    assert ("data", "globex", "hooli") in triples(findings)
    hit = next(f for f in findings if f.target == "hooli")
    assert hit.hops[0].path == GLOBEX and "names hooli" in hit.hops[0].what
    assert 'GRANT USAGE ON SCHEMA "hooli"' in (tree / GLOBEX).read_text().splitlines()[hit.hops[0].line - 1]


def test_bootstrap_granting_another_tenants_login_role_is_a_path(tree: Path) -> None:
    plant(tree, GLOBEX, 'GRANT rds_iam TO "globex_api";', 'GRANT "globex__owner" TO "initech_api";')
    assert ("data", "globex", "initech") in triples(isolation.analyze(tree, ORG))


def test_bootstrap_in_a_tenant_namespace_is_a_path(tree: Path) -> None:
    text = (tree / GLOBEX).read_text().replace(f"namespace: {POOLS_NS}", "namespace: tenant-hooli")
    (tree / GLOBEX).write_text(text)
    assert ("identity", "*", "hooli") in triples(isolation.analyze(tree, ORG))


def test_bootstrap_of_a_tenant_outside_the_pool_is_a_path(tree: Path) -> None:
    shutil.copy(tree / GLOBEX, tree / "rendered/argocd/prod/pools/standard/acme.yaml")
    found = triples(isolation.analyze(tree, ORG))
    assert {("data", "acme", "globex"), ("data", "acme", "hooli")} <= found


def test_dedicated_database_admitting_the_pool_admin_group_is_a_path(tree: Path) -> None:
    acme = tree / "rendered/terraform/prod/tenant-acme/main.tf"
    text = acme.read_text()
    assert "pod_security_group_ids[each.key]" in text
    acme.write_text(text.replace("pod_security_group_ids[each.key]", "pool_admin_security_group_id", 1))
    assert ("network", "*", "acme") in triples(isolation.analyze(tree, ORG))


# --- the admin path: reader role, ESO's permission, SecretStore, ExternalSecret, SGP ------------


def pools_of(sample: pipeline.Build) -> list[tuple[str, str]]:
    return sorted({(e, t) for e, t, _ in pooled(sample)})


def eso_role_arn(sample: pipeline.Build, env: str) -> str:
    """The External Secrets operator's IRSA role as the shared root's addons.tf names it."""
    doc = hcl(sample, f"rendered/terraform/{env}/shared/addons.tf")
    (module,) = [body for block in doc["module"] for name, body in block.items() if name == "irsa_addon_external_secrets"]
    environment = sample.model.environment(env)
    assert environment is not None
    return f"arn:aws:iam::{environment.accounts.shared_services}:role/{module['name']}"


def policy(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    documents = [named for block in doc["data"] for t, named in block.items() if t == "aws_iam_policy_document"]
    (body,) = [b for named in documents for n, b in named.items() if n == name]
    return list(body["statement"])


def reader_arn(sample: pipeline.Build, env: str, tier: str) -> str:
    environment = sample.model.environment(env)
    assert environment is not None
    return f"arn:aws:iam::{environment.accounts.pools[tier]}:role/{ORG}-{env}-pool-{tier}-secret-reader"


def test_pool_reader_trusts_only_eso_for_the_pools_namespace_and_reads_only_the_admin_secrets(sample: pipeline.Build) -> None:
    for env, tier in pools_of(sample):
        doc = hcl(sample, f"rendered/terraform/{env}/pool-{tier}/main.tf")
        role = resources(doc, "aws_iam_role")["pool_reader"]
        assert role["name"] == reader_arn(sample, env, tier).rsplit("/", 1)[1]
        assert role["assume_role_policy"] == "${data.aws_iam_policy_document.pool_reader_trust.json}"
        for statement in policy(doc, "pool_reader_trust"):
            assert statement["principals"][0]["identifiers"] == [eso_role_arn(sample, env)]
            tags = {c["variable"]: (c["test"], c["values"]) for c in statement["condition"]}
            assert tags["aws:RequestTag/esoNamespace"] == ("StringEquals", [POOLS_NS])
            if statement["actions"] == ["sts:AssumeRole"]:
                assert tags["sts:ExternalId"] == ("StringEquals", [f"{ORG}-{env}-pool-{tier}"])
        grants = {s["sid"]: s for s in policy(doc, "pool_reader")}
        assert set(grants) == {"ReadPoolAdminSecrets", "FindPoolMasterSecret", "DecryptPoolAdminSecrets"}
        read = grants["ReadPoolAdminSecrets"]
        assert sorted(read["resources"]) == [
            "${aws_secretsmanager_secret.pool_admin_endpoint.arn}",
            "${module.db.db_instance_master_user_secret_arn}",
        ]
        assert sorted(read["actions"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
        assert grants["FindPoolMasterSecret"]["actions"] == ["secretsmanager:ListSecrets"]  # metadata only, takes no resource
        decrypt = grants["DecryptPoolAdminSecrets"]
        assert decrypt["resources"] == ["${module.kms.key_arn}"]
        assert decrypt["condition"][0]["variable"] == "kms:ViaService"
        # the master secret is RDS-managed under the same key; the coordinates hold no password
        (db,) = [b for block in doc["module"] for n, b in block.items() if n == "db"]
        assert db["manage_master_user_password"] is True and db["master_user_secret_kms_key_id"] == "${module.kms.key_arn}"
        secret = resources(doc, "aws_secretsmanager_secret")["pool_admin_endpoint"]
        assert secret["name"] == f"{ORG}/{env}/pool-{tier}/admin-endpoint" and secret["kms_key_id"] == "${module.kms.key_arn}"
        value = resources(doc, "aws_secretsmanager_secret_version")["pool_admin_endpoint"]["secret_string"]
        assert "module.db.db_instance_address" in value and "password" not in value


def test_eso_may_assume_each_pool_reader(sample: pipeline.Build) -> None:
    for env, tier in pools_of(sample):
        doc = hcl(sample, f"rendered/terraform/{env}/shared/addons.tf")
        (module,) = [body for block in doc["module"] for name, body in block.items() if name == "irsa_addon_external_secrets"]
        text = sample.result.files[f"rendered/terraform/{env}/shared/addons.tf"].decode()
        assume = next(line for line in text.splitlines() if "local.tenant_records" in line and "secret_reader" in line)
        assert f'"{reader_arn(sample, env, tier)}"' in assume and assume.strip().startswith("resources")
        assert module["name"] == eso_role_arn(sample, env).rsplit("/", 1)[1]


def test_admin_path_fills_the_jobs_secret_through_the_pool_reader(sample: pipeline.Build) -> None:
    store_schema = _crd_validator("SecretStore", "external-secrets.io/v1")
    external_schema = _crd_validator("ExternalSecret", "external-secrets.io/v1")
    sgp_schema = _crd_validator("SecurityGroupPolicy", "vpcresources.k8s.aws/v1beta1")
    for env, tier in pools_of(sample):
        sgp, store, external = docs_of(sample, pb.admin_path(env, tier))
        for doc, schema in ((sgp, sgp_schema), (store, store_schema), (external, external_schema)):
            assert [e.message for e in schema.iter_errors(doc)] == [], doc["kind"]
            assert doc["metadata"]["namespace"] == POOLS_NS and "companyos.io/tenant" not in doc["metadata"]["labels"]
        aws = store["spec"]["provider"]["aws"]
        assert aws["role"] == reader_arn(sample, env, tier) and aws["externalID"] == f"{ORG}-{env}-pool-{tier}"
        spec = external["spec"]
        assert spec["secretStoreRef"] == {"kind": "SecretStore", "name": store["metadata"]["name"]}
        # the Secret every Job of this pool reads, with psql's variables
        assert spec["target"]["name"] == pb.admin_secret(tier)
        # one libpq service file: every connection field psql needs, each from a fetched key
        (service,) = spec["target"]["template"]["data"].items()
        assert service[0] == pb.SERVICE_KEY
        lines = service[1].splitlines()
        assert lines[0] == f"[{pb.SERVICE_NAME}]"
        fields = dict(line.split("=", 1) for line in lines[1:])
        assert fields == {"host": "{{ .host }}", "port": "{{ .port }}", "user": "{{ .username }}", "password": "{{ .password }}"}
        for _, _, tenant in [p for p in pooled(sample) if p[:2] == (env, tier)]:
            pod = docs_of(sample, pb.bootstrap_path(env, tier, tenant))[1]["spec"]["template"]["spec"]
            secrets = [v["secret"] for v in pod["volumes"] if "secret" in v]
            assert [s["secretName"] for s in secrets] == [spec["target"]["name"]]
            assert secrets[0]["items"] == [{"key": pb.SERVICE_KEY, "path": pb.SERVICE_KEY}]
            env_vars = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
            assert env_vars["PGSERVICE"] == pb.SERVICE_NAME
        # the coordinates by the name the pool root gives them; the master secret by RDS's tag
        pool_tf = hcl(sample, f"rendered/terraform/{env}/pool-{tier}/main.tf")
        endpoint = resources(pool_tf, "aws_secretsmanager_secret")["pool_admin_endpoint"]["name"]
        assert {d["remoteRef"]["key"] for d in spec["data"]} == {endpoint}
        (found,) = spec["dataFrom"]
        (db,) = [b for block in pool_tf["module"] for n, b in block.items() if n == "db"]
        environment = sample.model.environment(env)
        assert environment is not None
        instance = f"arn:aws:rds:{environment.aws.region}:{environment.accounts.pools[tier]}:db:{db['identifier']}"
        assert found["find"] == {"tags": {"aws:rds:primaryDBInstanceArn": instance}}
        assert found["rewrite"] == [{"merge": {"strategy": "Extract", "conflictPolicy": "Error"}}]
        # ordered before the ConfigMap and the Job
        waves = [int(d["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for d in (sgp, store, external)]
        assert max(waves) < int(pb.CONFIGMAP_WAVE) < int(pb.JOB_WAVE) and waves[1] < waves[2]


def test_security_group_policy_gives_only_this_pools_jobs_the_recorded_pool_admin_group(sample: pipeline.Build) -> None:
    recorded = yaml.safe_load((REPO / "catalog/networks.yaml").read_text())["environments"]
    for env, tier in pools_of(sample):
        sgp = docs_of(sample, pb.admin_path(env, tier))[0]
        assert sgp["kind"] == "SecurityGroupPolicy"
        assert sgp["spec"]["securityGroups"]["groupIds"] == [recorded[env]["pool_admin_security_group"]]
        assert recorded[env]["pool_admin_security_group"] not in recorded[env]["pod_security_groups"].values()
        selector = sgp["spec"]["podSelector"]["matchLabels"]
        for e, t, tenant in pooled(sample):
            pod = docs_of(sample, pb.bootstrap_path(e, t, tenant))[1]["spec"]["template"]["metadata"]["labels"]
            assert (selector.items() <= pod.items()) is (t == tier), (tier, tenant)


def test_pool_reader_and_admin_path_contracts(sample: pipeline.Build) -> None:
    """The admin file consumes the reader's trust and ESO's permission (two producers), the
    store it provides itself, the coordinates and the master secret (pool root)."""
    files = {f.path: f for f in pb.render(sample.model, Templates(sample.model.templates))}
    consumed = {(c.kind, c.name, c.detail) for c in files[pb.admin_path("prod", "standard")].consumes}
    arn, eso = reader_arn(sample, "prod", "standard"), eso_role_arn(sample, "prod")
    assert ("iam_role", arn, f"assumable by {eso}") in consumed
    assert any(k == "iam_role" and n == arn and d.startswith(f"trusts {eso} for {POOLS_NS}, reads ") for k, n, d in consumed)
    secrets = {n for k, n, _ in consumed if k == "secret"}
    master = next(s for s in secrets if s.startswith("aws:rds:primaryDBInstanceArn="))
    assert secrets == {f"{ORG}/prod/pool-standard/admin-endpoint", master}


# --- held pools and recording the group's id -----------------------------------------------------


def _drop_pool_admin_ids(repo: Path) -> None:
    path = repo / "catalog/networks.yaml"
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.strip().startswith("pool_admin_security_group:")]
    assert len(kept) == len(lines) - 3
    path.write_text("".join(kept))


def test_a_pool_without_a_recorded_group_id_is_held_and_has_no_policy(repo: Path) -> None:
    _drop_pool_admin_ids(repo)
    build = pipeline.build(repo, jobs=1)
    for env, tier in pools_of(build):
        text = build.result.files[pb.application_path(env, tier)].decode()
        (app,) = [d for d in yaml.safe_load_all(text) if d]
        assert "automated" not in app["spec"]["syncPolicy"]
        assert "# Held (no automated sync): pool_admin security group id not recorded" in text
        kinds = [d["kind"] for d in docs_of(build, pb.admin_path(env, tier))]
        assert kinds == ["SecretStore", "ExternalSecret"]
        assert "No SecurityGroupPolicy" in build.result.files[pb.admin_path(env, tier)].decode()


def test_record_pod_groups_records_the_pool_admin_group(repo: Path) -> None:
    _drop_pool_admin_ids(repo)
    outputs = {
        "pod_security_group_ids": {"value": {"acme": "sg-033c84eb23b889dc6", "globex": "sg-0764ba20331f77259"}},
        "pool_admin_security_group_id": {"value": "sg-0123456789abcdef0"},
    }
    lines = pod_groups.record_pod_groups(repo, "dev", json.dumps(outputs))
    assert "dev: pool bootstrap Jobs -> sg-0123456789abcdef0" in lines
    recorded = yaml.safe_load((repo / "catalog/networks.yaml").read_text())["environments"]
    assert recorded["dev"]["pool_admin_security_group"] == "sg-0123456789abcdef0"
    assert "pool_admin_security_group" not in recorded["prod"]
    model = pipeline.resolve_only(repo)
    dev = model.environment("dev")
    assert dev is not None and pb.held(model, dev, "standard") is None
    outputs["pool_admin_security_group_id"] = {"value": "pool-admin"}
    with pytest.raises(UsageError, match="pool_admin_security_group_id=pool-admin"):
        pod_groups.record_pod_groups(repo, "dev", json.dumps(outputs))


# --- planted faults: the analyzer and the contract check ----------------------------------------

POOL_TF = "rendered/terraform/prod/pool-standard/main.tf"


def test_pool_reader_trusting_a_tenant_namespace_is_a_path(tree: Path) -> None:
    text = (tree / POOL_TF).read_text()
    start = text.index('data "aws_iam_policy_document" "pool_reader_trust"')
    planted, count = re.subn(rf'(values\s*=\s*)\["{POOLS_NS}"\]', r'\1["tenant-hooli"]', text[start:], count=1)
    assert count == 1
    (tree / POOL_TF).write_text(text[:start] + planted)
    findings = isolation.analyze(tree, ORG)
    found = triples(findings)
    assert {("identity", "hooli", "globex"), ("identity", "hooli", "initech")} <= found
    hit = next(f for f in findings if f.source == "hooli" and f.target == "globex")
    assert hit.hops[0].path == POOL_TF and "pool-standard's admin secret trusts esoNamespace ['tenant-hooli']" in hit.hops[0].what


def test_pool_secret_store_assuming_a_tenants_reader_is_a_path(tree: Path) -> None:
    admin = "rendered/argocd/prod/pools/standard/pool-admin.yaml"
    plant(tree, admin, ':role/companyos-prod-pool-standard-secret-reader"', ':role/companyos-prod-globex-secret-reader"')
    assert ("identity", "*", "globex") in triples(isolation.analyze(tree, ORG))


def _contract_errors(repo: Path) -> list[str]:
    with pytest.raises(CatalogErrors) as raised:
        pipeline.build(repo, jobs=1)
    return [str(e) for e in raised.value.errors]


def test_pool_reader_trusting_a_tenant_namespace_breaks_its_contract(repo: Path) -> None:
    template = repo / "templates/terraform/_producers.tf.j2"
    text = template.read_text()
    call = '{{ eso_trust("pool_reader_trust", pr) }}'
    assert text.count(call) == 1
    # the pool reader's trust (both statements) names a tenant's namespace instead of the pools'
    planted = (
        '{{ eso_trust("pool_reader_trust", {"principal": pr.principal, "external_id": pr.external_id, "namespace": "tenant-globex"}) }}'
    )
    template.write_text(text.replace(call, planted))
    messages = _contract_errors(repo)
    broken = [m for m in messages if "-pool-standard-secret-reader" in m and "consumes iam_role" in m]
    assert broken and all(f"for {POOLS_NS}, reads" in m and "for tenant-globex, reads" in m for m in broken), messages
    assert all(m.startswith("catalog/tiers/standard.yaml:") for m in broken)


def test_eso_policy_missing_the_pool_reader_is_a_contract_error(monkeypatch: pytest.MonkeyPatch, repo: Path) -> None:
    # only the shared root's addons.tf lists the pools' readers (targets/terraform/addon_roles.py)
    monkeypatch.setattr(common, "pool_readers", lambda model, env: [])
    messages = _contract_errors(repo)
    for env in ("dev", "stage", "prod"):
        arn = next(m for m in messages if f"-{env}-pool-standard-secret-reader" in m)
        assert "rendered/argocd/" in arn and f"/pools/standard/{pb.ADMIN_FILE} consumes iam_role" in arn, messages
        assert "that assumable by arn:aws:iam::" in arn and "addon-external-secrets" in arn
