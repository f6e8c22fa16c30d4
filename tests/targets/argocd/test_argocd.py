"""The argocd target: ApplicationSets, AppProjects, namespaces and canaries, validated
against the upstream schemas and checked against the catalog they came from."""

from __future__ import annotations

import fnmatch
import subprocess
import sys

import pytest

from generator import pipeline
from generator.model import naming
from generator.targets import common
from generator.targets.argocd import target as argocd
from helpers.catalog_edit import edit_yaml
from helpers.k8s import brace_paths
from helpers.repo import REPO
from helpers.yaml_docs import load_yaml_docs

CRD_KINDS = ("ApplicationSet", "Application", "AppProject", "Rollout", "AnalysisTemplate", "ExternalSecret", "SecretStore")
CORE_KINDS = ("Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "HorizontalPodAutoscaler", "Job")


@pytest.mark.parametrize("kind", CRD_KINDS)
def test_argo_documents_validate_against_strict_crd_schemas(validation, kind):
    results = validation.get(kind, {})
    assert results, f"no {kind} rendered"
    bad = {where: errors for where, errors in results.items() if errors}
    assert not bad, bad


@pytest.mark.parametrize("kind", CORE_KINDS)
def test_core_documents_validate_with_kubernetes_validate(validation, kind):
    results = validation.get(kind, {})
    assert results, f"no {kind} rendered"
    bad = {where: errors for where, errors in results.items() if errors}
    assert not bad, bad


def test_nothing_goes_unvalidated(validation, delivery_docs):
    """ExternalSecret and SecretStore validate against their vendored CRD schemas; nothing may slip by."""
    unvalidated = validation.get("unvalidated", {})
    kinds = {d.kind for d in delivery_docs if d.where in unvalidated}
    assert kinds == set()


def test_one_application_per_tenant_and_service(sample, applications):
    expected = {(d.env, d.name, s.name) for d in sample.model.deployments for s in d.services}
    generated = [(env, params["tenant"], params["service"]) for env, params, _ in applications]
    assert sorted(generated) == sorted(expected)
    names = [app["metadata"]["name"] for _, _, app in applications]
    assert len(set(names)) == len(names)


def test_application_sources_point_at_rendered_files(sample, applications):
    """Chart at the pinned version, the values file through $values, and the extra
    manifests directory filtered to files that exist (or to nothing)."""
    files = sample.result.files
    repo = sample.model.platform.repository
    for env, params, app in applications:
        service = sample.model.services[params["service"]]
        chart = sample.model.platform.charts[service.chart]
        chart_src, values_src, extras_src = app["spec"]["sources"]
        assert (chart_src["repoURL"], chart_src["chart"], chart_src["targetRevision"]) == (chart.repository, chart.name, chart.version)
        [value_file] = chart_src["helm"]["valueFiles"]
        assert value_file == "$values/" + common.values_path(env, params["tenant"], params["service"])
        assert value_file.removeprefix("$values/") in files
        assert values_src == {"repoURL": repo.url, "targetRevision": repo.revision, "ref": "values"}
        assert extras_src["path"] == "rendered" and extras_src["repoURL"] == repo.url
        d = sample.model.deployment(params["tenant"], env)
        wanted = {f"migrations/{env}/{d.name}/{service.name}.yaml"} if service.migrations else set()
        if d.environment.progressive_delivery and service.canary and d.settings.services[service.name].canary.enabled:
            wanted.add(f"argocd/{env}/rollouts/{d.name}/{service.name}.yaml")
        if d.settings.services[service.name].slo.enabled:
            wanted.add(f"argocd/{env}/observability/{d.name}/{service.name}.yaml")
        if common.keda_scaled(sample.model, d, service):  # KEDA ScaledObject (targets/capacity.py)
            wanted.add(f"argocd/{env}/scaling/{d.name}/{service.name}.yaml")
        if common.scraped(d, service) is not None:  # Grafana dashboard (targets/dashboards.py)
            wanted.add(f"argocd/{env}/dashboards/{d.name}/{service.name}.yaml")
        if d.public_ingress(service):  # synthetic Probe (targets/probes.py)
            wanted.add(f"argocd/{env}/probes/{d.name}/{service.name}.yaml")
        if d.settings.services[service.name].flags:  # FeatureFlag + FeatureFlagSource (targets/feature_flags.py)
            wanted.add(f"argocd/{env}/flags/{d.name}/{service.name}.yaml")
        matched = {p for p in brace_paths(extras_src["directory"]["include"]) if "rendered/" + p in files}
        assert matched == wanted


def test_migration_and_rollout_files_are_all_reachable(sample, applications):
    """Every rendered migration Job, Rollout and SLO rule file is applied by exactly one Application."""
    included = [p for _, _, app in applications for p in brace_paths(app["spec"]["sources"][2]["directory"]["include"])]
    extras = sorted(
        p.removeprefix("rendered/")
        for p in sample.result.files
        if p.startswith("rendered/migrations/")
        or any(f"/{kind}/" in p for kind in ("rollouts", "observability", "scaling", "dashboards", "probes", "flags"))
    )
    assert extras and sorted(p for p in included if "rendered/" + p in sample.result.files) == extras


def test_rolling_sync_waves_canary_then_standard_then_regulated(sample, delivery_docs, applications):
    appsets = [d for d in delivery_docs if d.kind == "ApplicationSet" and "companyos.io/cell" in d.data["metadata"]["labels"]]
    assert appsets
    for doc in appsets:
        spec = doc.data["spec"]
        assert spec["strategy"]["type"] == "RollingSync"
        steps = [s["matchExpressions"][0]["values"] for s in spec["strategy"]["rollingSync"]["steps"]]
        # every wave a tenant could be in (pooled tiers before dedicated ones), present or not, so
        # onboarding the first tenant of a tier does not rewrite the ApplicationSet
        assert [v for [v] in steps] == ["canary", "standard", "regulated"]
        for env, params, app in applications:
            if env == doc.environment:
                label = app["metadata"]["labels"]["companyos.io/wave"]
                assert sum(label in values for values in steps) == 1
                assert (label == "canary") == sample.model.tenants[params["tenant"]].canary


def test_sync_policy_follows_the_environment(sample, applications):
    by_env = {e.name: e for e in sample.model.environments}
    for env, _, app in applications:
        policy = app["spec"]["syncPolicy"]
        sync = by_env[env].sync
        if sync.automated:
            assert policy["automated"] == {"prune": sync.prune, "selfHeal": sync.self_heal}
        else:
            assert "automated" not in policy
        assert "CreateNamespace=false" in policy["syncOptions"]


def test_prod_projects_sync_only_inside_the_change_window(sample, delivery_docs):
    projects = [d for d in delivery_docs if d.kind == "AppProject" and d.tenant]
    assert projects
    for doc in projects:
        env = next(e for e in sample.model.environments if e.name == doc.environment)
        windows = doc.data["spec"].get("syncWindows", [])
        if env.change_window is None:
            assert windows == []
        else:
            assert windows == [
                {
                    "kind": "allow",
                    "schedule": env.change_window.schedule,
                    "duration": env.change_window.duration,
                    "timeZone": env.change_window.timezone,
                    "applications": ["*"],
                    "manualSync": True,
                }
            ]
    assert any(d.environment == "prod" and d.data["spec"].get("syncWindows") for d in projects)


def test_rollouts_follow_service_steps_and_reference_the_chart_deployment(sample, delivery_docs):
    rollouts = [d for d in delivery_docs if d.kind == "Rollout"]
    assert rollouts
    for doc in rollouts:
        d = sample.model.deployment(doc.tenant, doc.environment)
        service = sample.model.services[doc.data["metadata"]["name"]]
        assert d.environment.progressive_delivery and service.canary and d.settings.services[service.name].canary.enabled
        canary = doc.data["spec"]["strategy"]["canary"]
        weights = [s["setWeight"] for s in canary["steps"] if "setWeight" in s]
        assert weights == [s.weight for s in service.canary.steps]
        pauses = [s["pause"]["duration"] for s in canary["steps"] if "pause" in s]
        assert pauses == [s.pause for s in service.canary.steps if s.pause]
        values = load_yaml_docs(sample.result.files[common.values_path(d.env, d.name, service.name)])[0]
        ref = doc.data["spec"]["workloadRef"]
        assert (ref["kind"], ref["name"]) == ("Deployment", values["applicationName"])
        # The Rollout owns the pods: the Deployment has no replica count and no chart HPA.
        assert "replicas" not in values["deployment"] and values["autoscaling"]["enabled"] is False
        template = next(x for x in delivery_docs if x.kind == "AnalysisTemplate" and x.path == doc.path)
        assert canary["analysis"]["templates"] == [{"templateName": template.data["metadata"]["name"]}]
        metric = template.data["spec"]["metrics"][0]
        # Thresholds come from the SLO (tests/targets/test_slo.py checks the arithmetic).
        slo = d.settings.services[service.name].slo
        assert metric["name"] == "availability-burn-rate"
        assert metric["successCondition"].endswith(f"<= {(100 - slo.availability.objective) / 100 * slo.canary_max_burn_rate:.6g}")
    # dev has progressive_delivery: false; worker declares no canary.
    assert not any(d.environment == "dev" for d in rollouts)
    assert not any(d.data["metadata"]["name"] == "worker" for d in rollouts)


def test_disabling_the_canary_for_a_tenant_removes_the_rollout(repo):
    target = common.values_path("prod", "globex", "web")
    rollout = argocd.rollout_path("prod", "globex", "web")
    before = pipeline.build(repo).result.files
    assert rollout in before and b"replicas:" not in before[target]

    def disable(data):
        data["overrides"] = {"prod": {"services": {"web": {"canary": {"enabled": False}}}}}

    edit_yaml(repo / "tenants" / "globex.yaml", disable)
    after = pipeline.build(repo).result.files
    assert rollout not in after
    assert b"replicas: 2" in after[target]
    assert argocd.rollout_path("stage", "globex", "web") in after


def test_environment_without_progressive_delivery_renders_no_rollouts(repo):
    edit_yaml(repo / "environments" / "stage.yaml", lambda data: data.__setitem__("progressive_delivery", False))
    files = pipeline.build(repo).result.files
    assert not any(p.startswith("rendered/argocd/stage/rollouts/") for p in files)
    assert any(p.startswith("rendered/argocd/prod/rollouts/") for p in files)


def test_sync_policy_change_in_catalog_changes_the_applicationset(repo):
    def manual(data):
        data["sync"]["automated"] = False

    edit_yaml(repo / "environments" / "dev.yaml", manual)
    files = pipeline.build(repo).result.files
    appset = load_yaml_docs(files["rendered/argocd/dev/applicationsets.yaml"])[0]
    assert "automated" not in appset["spec"]["template"]["spec"]["syncPolicy"]


def test_platform_project_alone_may_create_namespaces(sample, delivery_docs):
    projects = [d for d in delivery_docs if d.kind == "AppProject"]
    platform_names = {naming.platform_project(sample.model.platform, e.name) for e in sample.model.environments}
    platform = [d for d in projects if d.data["metadata"]["name"] in platform_names]
    assert len(platform) == len(platform_names)
    assert all(d.data["spec"]["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}] for d in platform)
    assert all(d.data["spec"]["clusterResourceWhitelist"] == [] for d in projects if d not in platform)
    namespace_apps = [d for d in delivery_docs if d.kind == "Application" and "/tenants/" in d.path]
    assert len(namespace_apps) == len(sample.model.deployments)
    for app in namespace_apps:
        assert app.data["spec"]["project"] == naming.platform_project(sample.model.platform, app.environment)
        assert app.data["spec"]["source"]["directory"]["include"] == f"{app.data['metadata']['labels']['companyos.io/tenant']}.yaml"


def test_namespace_manifests_come_from_the_tier_and_environment_quota(sample, delivery_docs):
    quotas = [d for d in delivery_docs if d.kind == "ResourceQuota"]
    assert len(quotas) == len(sample.model.deployments)
    for doc in quotas:
        quota = sample.model.deployment(doc.tenant, doc.environment).settings.quota
        assert doc.data["spec"]["hard"] == {
            "requests.cpu": quota.requests_cpu,
            "requests.memory": quota.requests_memory,
            "limits.cpu": quota.limits_cpu,
            "limits.memory": quota.limits_memory,
            "pods": str(quota.pods),
        }
    deny = [d for d in delivery_docs if d.kind == "NetworkPolicy" and d.data["metadata"]["name"] == "default-deny"]
    assert len(deny) == len(sample.model.deployments)
    assert all(d.data["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]} for d in deny)


def test_yamllint_accepts_the_rendered_delivery_yaml(tmp_path):
    """One emitter, stable layout: yamllint with the defaults minus the rules our emitter's
    style deliberately differs on (unindented sequences, long generated lines)."""
    config = tmp_path / "yamllint.yaml"
    config.write_text("extends: default\nrules:\n  line-length: disable\n  indentation: {spaces: 2, indent-sequences: whatever}\n")
    paths = sorted(
        str(p)
        for d in ("argocd", "migrations")
        for p in (REPO / "rendered" / d).rglob("*.yaml")
        if p.name != "controller-values.yaml"  # the argo-cd chart's values (a plain mapping), not a manifest stream
    )
    assert paths
    result = subprocess.run([sys.executable, "-m", "yamllint", "-s", "-c", str(config), *paths], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bootstrap_applies_projects_before_applications(sample, delivery_docs):
    """The root Application syncs every AppProject/ApplicationSet file of its environment;
    AppProjects carry an earlier sync wave than the Applications that name them."""
    for env in sample.model.environments:
        [root] = [d for d in delivery_docs if d.kind == "Application" and d.path == f"rendered/argocd/{env.name}/bootstrap.yaml"]
        include = root.data["spec"]["source"]["directory"]["include"]
        patterns = include.strip("{}").split(",")
        env_files = [
            p.removeprefix(f"rendered/argocd/{env.name}/")
            for p in sample.result.files
            if p.startswith(f"rendered/argocd/{env.name}/")
            and any(x.kind in ("AppProject", "ApplicationSet") for x in delivery_docs if x.path == p)
        ]
        assert env_files and all(any(fnmatch.fnmatchcase(f, pat) for pat in patterns) for f in env_files)
        assert not any(fnmatch.fnmatchcase(f"namespaces/{t}.yaml", pat) for t in sample.model.tenants for pat in patterns)
    for doc in delivery_docs:
        if doc.kind == "AppProject" and not doc.path.endswith("bootstrap.yaml"):
            assert doc.data["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"
