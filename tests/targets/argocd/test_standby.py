"""The DR cluster in Argo CD (issue 15): every prod Application also exists on the standby
cluster, held at zero replicas by a values file layered last; committing
``disaster_recovery.active: true`` (what the failover workflow does) and rendering scales them to
the tenants' own replica counts and moves the SecretStores to the DR region. Validated against
the vendored CRD schemas and the chart's values schema."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from generator import pipeline, vendor
from generator.targets.argocd import standby
from helpers import k8s
from helpers.catalog_edit import edit_yaml
from helpers.diagnostics import errors_of, line_of
from helpers.repo import snapshot

STANDBY = "rendered/argocd/prod/standby/standby.yaml"
SCALE = "rendered/helm/prod/standby/{tenant}.yaml"
CHART_SCHEMA = vendor.crd_schema_dir().parent / "helm" / "application-9.2.0.values.schema.json"


def _merge(base: Any, over: Any) -> Any:
    """Helm's values layering: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)


def _effective(files: dict[str, bytes], app: dict[str, Any]) -> dict[str, Any]:
    """The values an Application's chart source would get, in valueFiles order."""
    chart = app["spec"]["sources"][0]
    values: dict[str, Any] = {}
    for ref in chart["helm"]["valueFiles"]:
        values = _merge(values, yaml.safe_load(files[ref.removeprefix("$values/")]) or {})
    return values


def _standby_apps(build: pipeline.Build) -> list[tuple[str | None, dict[str, str], dict[str, Any]]]:
    return k8s.applications_of(k8s.delivery_docs_of(build), build.result.files, standby=True)


def test_every_prod_application_exists_on_the_standby_cluster_and_validates(sample):
    standby = _standby_apps(sample)
    prod = {(d.name, s.name) for d in sample.model.in_environment("prod") for s in d.services}
    assert {(e["tenant"], e["service"]) for _, e, _ in standby} == prod
    assert {env for env, _, _ in standby} == {"prod"}
    for _, element, app in standby:
        assert app["metadata"]["name"] == f"{element['name']}-dr"
        assert app["spec"]["destination"] == {"name": "companyos-prod-dr", "namespace": element["namespace"]}
        # the tenant's own standby values, layered last: a file that exists for every element
        assert app["spec"]["sources"][0]["helm"]["valueFiles"][-1] == f"$values/{SCALE.format(tenant=element['tenant'])}"
        assert SCALE.format(tenant=element["tenant"]) in sample.result.files
        errors = [e.message for e in k8s._crd_validator("Application").iter_errors(app)]
        assert errors == [], errors
    docs = yaml.safe_load_all(sample.result.files[STANDBY])
    for doc in docs:
        errors = [e.message for e in k8s._crd_validator(doc["kind"], doc["apiVersion"]).iter_errors(doc)]
        assert errors == [], (doc["kind"], errors)
    # no standby anywhere else, and the primaries are not touched
    assert not any(p.startswith(("rendered/argocd/dev/standby", "rendered/argocd/stage/standby")) for p in sample.result.files)
    assert all(
        not app["metadata"]["name"].endswith("-dr") for _, _, app in k8s.applications_of(k8s.delivery_docs_of(sample), sample.result.files)
    )


def test_standing_by_every_standby_application_runs_zero_replicas(sample):
    prod = {d.name for d in sample.model.in_environment("prod")}
    scale_files = {p for p in sample.result.files if p.startswith("rendered/helm/prod/standby/")}
    assert scale_files == {SCALE.format(tenant=t) for t in prod}  # one per tenant, no fleet-wide file
    assert "rendered/helm/prod/standby.yaml" not in sample.result.files
    for path in scale_files:
        jsonschema.validate(yaml.safe_load(sample.result.files[path]), json.loads(CHART_SCHEMA.read_text()))
        assert sample.result.entry(path)["tenant"] == path.rsplit("/", 1)[1].removesuffix(".yaml")  # in the tenant's unit
    for _, element, app in _standby_apps(sample):
        values = _effective(sample.result.files, app)
        assert values["deployment"]["replicas"] == 0, element
        assert values["autoscaling"]["enabled"] is False and values["pdb"]["enabled"] is False
        assert len(app["spec"]["sources"]) == 2, "no Rollouts or ScaledObjects while standing by"


def test_the_failover_commit_scales_the_standby_up_and_moves_the_secret_stores(repo, companyos):
    before = pipeline.build(repo)
    stores_before = _store_regions(before)
    assert stores_before and set(stores_before.values()) == {"eu-west-1"}

    result = companyos("standby", "prod", "--active", cwd=repo)
    assert result.code == 0, result.err
    after = pipeline.build(repo)

    assert all(yaml.safe_load(after.result.files[SCALE.format(tenant=d.name)]) == {} for d in after.model.in_environment("prod"))
    apps = _standby_apps(after)
    assert apps
    for _, element, app in apps:
        values = _effective(after.result.files, app)
        own = yaml.safe_load(after.result.files[app["spec"]["sources"][0]["helm"]["valueFiles"][0].removeprefix("$values/")])
        assert values["deployment"].get("replicas") == own["deployment"].get("replicas")
        assert values["autoscaling"]["enabled"] == own["autoscaling"]["enabled"]
        replicas = values["deployment"].get("replicas")
        assert replicas is None or replicas > 0, element  # None: a Rollout or KEDA owns the count
        assert len(app["spec"]["sources"]) == 3 and app["spec"]["sources"][2]["path"] == "rendered"
    assert set(_store_regions(after).values()) == {"eu-central-1"}
    assert _store_regions(after).keys() == stores_before.keys()
    # dev is untouched by prod's failover
    assert _store_regions(after, "dev") == _store_regions(before, "dev")


def _store_regions(build: pipeline.Build, env: str = "prod") -> dict[str, str]:
    out = {}
    for path, data in build.result.files.items():
        if path.startswith(f"rendered/argocd/{env}/namespaces/"):
            for doc in yaml.safe_load_all(data):
                if doc and doc.get("kind") == "SecretStore":
                    out[path] = doc["spec"]["provider"]["aws"]["region"]
    return out


def test_projects_admit_the_standby_cluster_and_bootstrap_syncs_the_registration(sample):
    docs = k8s.delivery_docs_of(sample)
    for d in docs:
        if d.kind == "AppProject" and d.environment == "prod" and "/projects/" in d.path:
            names = {dest["name"] for dest in d.data["spec"]["destinations"]}
            assert "companyos-prod-dr" in names, d.where
        if d.kind == "AppProject" and d.environment == "dev":
            assert all(not dest["name"].endswith("-dr") for dest in d.data["spec"]["destinations"]), d.where
    boot = [d for d in docs if d.path == "rendered/argocd/prod/bootstrap.yaml"]
    project = next(d.data for d in boot if d.kind == "AppProject")
    assert {"group": "external-secrets.io", "kind": "ExternalSecret"} in project["spec"]["namespaceResourceWhitelist"]
    app = next(d.data for d in boot if d.kind == "Application")
    assert "standby/*.yaml" in app["spec"]["source"]["directory"]["include"]
    registration = next(doc for doc in yaml.safe_load_all(sample.result.files[STANDBY]) if doc["kind"] == "ExternalSecret")
    template = registration["spec"]["target"]["template"]
    assert template["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "cluster"
    assert template["data"]["name"] == "companyos-prod-dr"
    assert json.loads(template["data"]["config"].replace("{{ .cluster }}", "c").replace("{{ .ca }}", "x"))["awsAuthConfig"] == {
        "clusterName": "c"
    }


def test_standby_command_edits_one_line_and_refuses_an_environment_without_a_standby(repo, companyos):
    path = repo / "environments/prod.yaml"
    before = path.read_text()
    assert companyos("standby", "prod", "--active", cwd=repo).code == 0
    after = path.read_text()
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert added == ["  active: true"] and len(after.splitlines()) == len(before.splitlines()) + 1
    again = companyos("standby", "prod", "--active", cwd=repo)
    assert again.code == 0 and "unchanged" in again.out
    assert companyos("standby", "prod", "--standby", cwd=repo).code == 0
    assert yaml.safe_load(path.read_text())["disaster_recovery"]["active"] is False
    dev = Path(repo / "environments/dev.yaml").read_text()
    refused = companyos("standby", "dev", "--active", cwd=repo)
    assert refused.code == 2 and "no disaster_recovery" in refused.err and "Traceback" not in refused.err
    assert (repo / "environments/dev.yaml").read_text() == dev


def _validate(build: pipeline.Build) -> None:
    for doc in yaml.safe_load_all(build.result.files[STANDBY]):
        errors = [e.message for e in k8s._crd_validator(doc["kind"], doc["apiVersion"]).iter_errors(doc)]
        assert errors == [], (doc["kind"], errors)
    for _, _, app in _standby_apps(build):
        errors = [e.message for e in k8s._crd_validator("Application").iter_errors(app)]
        assert errors == [], errors


def _extras_include(app: dict[str, Any], tenant: str) -> str | None:
    """The extras source's include as Argo CD's go template renders it for ``tenant`` (the
    only condition the standby template uses: ``{{if eq .tenant "a" ...}}X{{else}}Y{{end}}``)."""
    if len(app["spec"]["sources"]) < 3:
        return None
    include = app["spec"]["sources"][2]["directory"]["include"]
    m = re.fullmatch(r'\{\{if eq \.tenant ((?:"[a-z0-9-]+" ?)+)\}\}(.*)\{\{else\}\}(.*)\{\{end\}\}', include)
    if m is None:
        return include
    return m.group(2) if tenant in re.findall(r'"([a-z0-9-]+)"', m.group(1)) else m.group(3)


def test_one_tenant_failed_over_alone_runs_while_the_others_stand_by(repo, companyos):
    before = pipeline.build(repo)
    result = companyos("standby", "prod", "--active", "--tenant", "acme", cwd=repo)
    assert result.code == 0 and "prod/acme: standby active" in result.out, result.err
    after = pipeline.build(repo)
    _validate(after)
    # the template names no tenant in a values path, and the ApplicationSet's shape is the same
    apps = _standby_apps(after)
    assert {e["tenant"] for _, e, _ in apps} == {d.name for d in after.model.in_environment("prod")}
    extras: set[str] = set()
    for _, element, app in apps:
        values = _effective(after.result.files, app)
        include = _extras_include(app, element["tenant"])
        if element["tenant"] == "acme":
            own = yaml.safe_load(after.result.files[app["spec"]["sources"][0]["helm"]["valueFiles"][0].removeprefix("$values/")])
            assert values["deployment"].get("replicas") == own["deployment"].get("replicas")
            assert include is not None and include.startswith("{") and f"acme/{element['service']}.yaml" in include
            extras.update(p for p in k8s.brace_paths(include) if f"rendered/{p}" in after.result.files)
        else:
            assert values["deployment"]["replicas"] == 0 and values["autoscaling"]["enabled"] is False, element
            assert include == standby.NO_EXTRAS and not any(p.endswith(include) for p in after.result.files)
    # only acme's SecretStore reads the DR region; only acme's and the shared files changed
    regions = _store_regions(after)
    assert {p for p, r in regions.items() if r == "eu-central-1"} == {"rendered/argocd/prod/namespaces/acme.yaml"}
    assert extras, "acme's Rollouts, flags, ... are deployed on the standby once it is failed over"
    changed = {p for p in after.result.files if after.result.files[p] != before.result.files.get(p)}
    assert not any(t in p for p in changed for t in ("globex", "hooli", "initech", "umbrella")), changed
    assert {STANDBY, SCALE.format(tenant="acme"), "rendered/argocd/prod/namespaces/acme.yaml"} <= changed


def test_standby_command_for_one_tenant_edits_the_list_and_refuses_what_it_cannot_do(repo, companyos):
    path = repo / "environments/prod.yaml"
    before = path.read_text()
    assert companyos("standby", "prod", "--active", "--tenant", "acme", cwd=repo).code == 0
    assert companyos("standby", "prod", "--active", "--tenant", "umbrella", cwd=repo).code == 0
    assert yaml.safe_load(path.read_text())["disaster_recovery"]["active_tenants"] == ["acme", "umbrella"]
    assert "unchanged" in companyos("standby", "prod", "--active", "--tenant", "acme", cwd=repo).out
    assert companyos("standby", "prod", "--standby", "--tenant", "acme", cwd=repo).code == 0
    assert companyos("standby", "prod", "--standby", "--tenant", "umbrella", cwd=repo).code == 0
    assert path.read_text() == before  # the key goes with its last tenant, nothing else moved
    for bad, message in (("Bad_Name", "is not a tenant name"), ("nope", "no tenant 'nope' (tenants/nope.yaml)")):
        refused = companyos("standby", "prod", "--active", "--tenant", bad, cwd=repo)
        assert refused.code == 2 and message in refused.err and "Traceback" not in refused.err
    # one tenant cannot fail back out of an environment-wide failover; that failback clears the list
    assert companyos("standby", "prod", "--active", "--tenant", "acme", cwd=repo).code == 0
    assert companyos("standby", "prod", "--active", cwd=repo).code == 0
    refused = companyos("standby", "prod", "--standby", "--tenant", "acme", cwd=repo)
    assert refused.code == 2 and "failed over as a whole" in refused.err
    assert companyos("standby", "prod", "--standby", cwd=repo).code == 0
    dr = yaml.safe_load(path.read_text())["disaster_recovery"]
    assert dr["active"] is False and "active_tenants" not in dr


@pytest.mark.parametrize(
    ("tenant", "message"),
    [
        ("globex", "tenant 'globex' is in the pooled tier 'standard': its database is shared with the pool"),
        ("nobody", "unknown tenant 'nobody'"),
    ],
)
def test_active_tenants_must_be_dedicated_tenants_of_the_environment(repo, companyos, tenant, message):
    edit_yaml(repo / "environments/prod.yaml", lambda d: d["disaster_recovery"].__setitem__("active_tenants", ["umbrella", tenant]))
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    assert result.code == 2 and "Traceback" not in result.err, result.err
    assert snapshot(repo) == before
    (error,) = [e for e in errors_of(result.err) if "active_tenants" in e["message"] or tenant in e["message"]]
    assert message in error["message"]
    path = repo / "environments/prod.yaml"
    line = line_of(path, tenant, after="active_tenants")
    text = path.read_text().splitlines()[line - 1]
    assert (error["path"], int(error["line"]), int(error["col"])) == ("environments/prod.yaml", line, text.index(tenant) + 1)


def test_active_tenants_refuses_a_tenant_of_another_environment(repo, companyos):
    def leave_prod(d: Any) -> None:
        d["environments"].remove("prod")
        d.get("overrides", {}).pop("prod", None)
        d.get("accounts", {}).pop("prod", None)

    edit_yaml(repo / "tenants/umbrella.yaml", leave_prod)
    edit_yaml(repo / "environments/prod.yaml", lambda d: d["disaster_recovery"].__setitem__("active_tenants", ["umbrella"]))
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    assert result.code == 2 and snapshot(repo) == before
    (error,) = [e for e in errors_of(result.err) if e["message"] == "tenant 'umbrella' is not deployed to environment 'prod'"]
    assert error["path"] == "environments/prod.yaml", result.err
    assert (error["path"], int(error["line"])) == ("environments/prod.yaml", line_of(repo / "environments/prod.yaml", "umbrella"))
