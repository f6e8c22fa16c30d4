"""Migration Jobs: PreSync hooks that plan, dry-run and apply with the service's image."""

from __future__ import annotations

from generator import pipeline
from generator.model import naming
from generator.targets import common
from helpers.catalog_edit import edit_yaml
from helpers.yaml_docs import load_yaml_docs


def _jobs(delivery_docs):
    return [d for d in delivery_docs if d.kind == "Job"]


def test_a_job_for_every_service_with_migrations_and_none_without(sample, delivery_docs):
    expected = {common.job_path(d.env, d.name, s.name) for d in sample.model.deployments for s in d.services if s.migrations}
    rendered = {p for p in sample.result.files if p.startswith("rendered/migrations/")}
    assert expected and rendered == expected
    assert {d.path for d in _jobs(delivery_docs)} == expected


def test_job_runs_plan_then_dry_run_then_apply_as_a_presync_hook(sample, delivery_docs):
    for doc in _jobs(delivery_docs):
        d = sample.model.deployment(doc.tenant, doc.environment)
        service = sample.model.services[doc.data["metadata"]["labels"]["app.kubernetes.io/part-of"]]
        m = service.migrations
        annotations = doc.data["metadata"]["annotations"]
        assert annotations["argocd.argoproj.io/hook"] == "PreSync"
        assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
        assert int(annotations["argocd.argoproj.io/sync-wave"]) < 0
        spec = doc.data["spec"]
        assert spec["backoffLimit"] >= 0 and spec["activeDeadlineSeconds"] > 0 and spec["ttlSecondsAfterFinished"] > 0
        pod = spec["template"]["spec"]
        steps = [(c["name"], c["command"] + c["args"]) for c in pod["initContainers"] + pod["containers"]]
        assert steps == [("plan", m.command + m.plan_args), ("dry-run", m.command + m.dry_run_args), ("apply", m.command + m.apply_args)]
        assert doc.data["metadata"]["namespace"] == d.namespace
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["initContainers"] + pod["containers"]:
            assert container["image"] == d.image_ref(service.name)
            assert container["image"].startswith(f"{d.image_repository(service.name)}:{d.image_tag(service.name)}")
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
            assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert container["resources"]["requests"] and container["resources"]["limits"]
            # Credentials only by reference: the Secret the hook's ExternalSecret fills.
            assert container["envFrom"] == [{"secretRef": {"name": naming.migration_secret_name(service.name)}}]
            assert all(
                set(e) == {"name", "value"} and e["name"] in {"TENANT", "ENVIRONMENT", "MIGRATION_TARGET_VERSION"} for e in container["env"]
            )


def test_external_secret_is_an_earlier_hook_reading_the_database_key(sample, delivery_docs):
    for job in _jobs(delivery_docs):
        [secret] = [d for d in delivery_docs if d.path == job.path and d.kind == "ExternalSecret"]
        service = job.data["metadata"]["labels"]["app.kubernetes.io/part-of"]

        def wave(doc):
            return int(doc.data["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])

        assert secret.data["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
        assert wave(secret) < wave(job)
        spec = secret.data["spec"]
        assert spec["target"]["name"] == naming.migration_secret_name(service)
        assert spec["dataFrom"] == [{"extract": {"key": naming.db_secret_key(sample.model.platform, job.environment, job.tenant, service)}}]
        # the tenant namespace's own SecretStore (tests/targets/test_secret_access.py)
        assert spec["secretStoreRef"] == {"name": sample.model.platform.secret_store, "kind": "SecretStore"}


def test_image_tag_pin_moves_the_job_and_the_deployment_together(sample, repo):
    """The rollback lever: umbrella pins api to 1.14.1 in prod only."""

    def image(files, env, tenant):
        job = load_yaml_docs(files[common.job_path(env, tenant, "api")])[1]
        return job["spec"]["template"]["spec"]["containers"][0]["image"].split("@", 1)[0].rsplit(":", 1)[1]

    files = sample.result.files
    pinned = sample.model.deployment("umbrella", "prod").image_tag("api")
    assert image(files, "prod", "umbrella") == pinned == "1.14.1"
    assert image(files, "stage", "umbrella") == sample.model.services["api"].image.tag
    values = load_yaml_docs(files["rendered/helm/prod/umbrella/api.yaml"])[0]
    assert values["deployment"]["image"]["tag"] == pinned

    def pin(data):
        data["overrides"] = {"stage": {"services": {"api": {"image_tag": "1.13.9"}}}}

    edit_yaml(repo / "tenants" / "acme.yaml", pin)
    after = pipeline.build(repo).result.files
    assert image(after, "stage", "acme") == "1.13.9"
    assert image(after, "prod", "acme") == sample.model.services["api"].image.tag
