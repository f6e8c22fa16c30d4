"""The pooled database's per-tenant bootstrap (targets/pool_bootstrap.py, docs/isolation.md):
one file per pooled tenant with idempotent SQL naming only that tenant, a hardened Sync hook
Job, the pool Application into ``<org>-pools``, the Terraform path from the Jobs' security group
to each pool database only; and the isolation analyzer catching a bootstrap that names,
lands in or belongs to another tenant."""

from __future__ import annotations

import fnmatch
import re
import shutil
from pathlib import Path
from typing import Any

import hcl2
import kubernetes_validate
import pytest
import yaml

from generator import pipeline
from generator.formats.templating import Templates
from generator.model import naming
from generator.ops import isolation
from generator.targets import admission
from generator.targets import pool_bootstrap as pb
from generator.targets.argocd import target as argocd
from helpers.k8s import _crd_validator, brace_paths
from helpers.kyverno import request_refusals

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
    got = {p for p in sample.result.files if re.fullmatch(r"rendered/argocd/[a-z]+/pools/[a-z0-9-]+/[a-z0-9-]+\.yaml", p)}
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
        assert container["envFrom"] == [{"secretRef": {"name": pb.admin_secret(tier)}}]
        # psql of the pool's engine version, pinned like the DR integrity recorder
        pool_tf = sample.result.files[f"rendered/terraform/{env}/pool-{tier}/main.tf"].decode()
        version = re.search(r'engine_version\s*=\s*"([0-9.]+)"', pool_tf)
        assert version is not None and container["image"] == f"public.ecr.aws/docker/library/postgres:{version.group(1)}"
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
        assert ("automated" in spec["syncPolicy"]) is (not pb.HELD)
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
    return isolation._unquote(hcl2.loads(sample.result.files[path].decode()))  # type: ignore[no-any-return]


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
    root = tmp_path_factory.mktemp("pool-bootstrap")
    for path, data in sample.result.files.items():
        if path.startswith("rendered/"):
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
    return root


@pytest.fixture
def tree(clean: Path, tmp_path: Path) -> Path:
    shutil.copytree(clean / "rendered", tmp_path / "rendered")
    return tmp_path


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
