"""OpenFeature flags (issue 16 item 7): each tenant's FeatureFlag and FeatureFlagSource per
environment and service with flags, valid against the vendored OpenFeature CRD schemas, holding
the value the layers resolve for that deployment; the service's pods name the source so
flagd is injected; bad flags are ``path:line:col`` errors with nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from generator import pipeline, vendor
from generator.errors import CatalogErrors
from generator.targets import common
from helpers.catalog_edit import edit_yaml, override
from helpers.diagnostics import errors_of, line_of
from helpers.repo import snapshot
from helpers.yaml_docs import load_yaml_docs

CRDS = vendor.crd_schema_dir()


def _validator(kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads((CRDS / f"core.openfeature.dev_v1beta1_{kind}.json").read_text()))


def _flag_docs(build: pipeline.Build, env: str, tenant: str, service: str) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in load_yaml_docs(build.result.files[common.flags_path(env, tenant, service)])}


def test_every_deployment_of_a_service_with_flags_has_both_objects_and_they_validate(sample):
    validators = {k: _validator(k) for k in ("FeatureFlag", "FeatureFlagSource")}
    seen = 0
    for d in sample.model.deployments:
        for s in d.services:
            path = common.flags_path(d.env, d.name, s.name)
            if not d.settings.services[s.name].flags:
                assert path not in sample.result.files
                continue
            docs = _flag_docs(sample, d.env, d.name, s.name)
            assert set(docs) == {"FeatureFlag", "FeatureFlagSource"}
            for kind, doc in docs.items():
                assert list(validators[kind].iter_errors(doc)) == [], (path, kind)
            seen += 1
    assert seen
    bad = {**docs["FeatureFlag"], "spec": {"flagSpec": {"flags": {"x": {"state": "ON", "variants": {}, "defaultVariant": "a"}}}}}
    assert list(validators["FeatureFlag"].iter_errors(bad)), "the schema must be able to fail"


def test_the_environment_layer_switches_the_flag_and_other_environments_keep_the_default(sample):
    # The sample: web declares new-checkout off; environments/dev.yaml serves on.
    for d in sample.model.deployments:
        if not any(s.name == "web" for s in d.services):
            continue
        flag = _flag_docs(sample, d.env, d.name, "web")["FeatureFlag"]["spec"]["flagSpec"]["flags"]["new-checkout"]
        assert flag["defaultVariant"] == ("on" if d.env == "dev" else "off"), (d.name, d.env)
        assert flag["variants"] == {"on": True, "off": False}
        assert flag["defaultVariant"] in flag["variants"]


def test_the_source_reads_the_flag_object_and_the_pods_name_the_source(sample):
    for d in sample.model.deployments:
        for s in d.services:
            if not d.settings.services[s.name].flags:
                continue
            docs = _flag_docs(sample, d.env, d.name, s.name)
            [source] = docs["FeatureFlagSource"]["spec"]["sources"]
            flag = docs["FeatureFlag"]["metadata"]
            assert source == {"source": f"{flag['namespace']}/{flag['name']}", "provider": "kubernetes"}
            [values] = load_yaml_docs(sample.result.files[common.values_path(d.env, d.name, s.name)])
            annotations = values["deployment"]["additionalPodAnnotations"]
            assert annotations == {
                "openfeature.dev/enabled": "true",
                "openfeature.dev/featureflagsource": docs["FeatureFlagSource"]["metadata"]["name"],
            }


def test_the_operator_addon_provides_the_kinds_and_needs_cert_manager(sample):
    addons = sample.model.catalog.of("addon")
    ofo = addons["open-feature-operator"].spec
    assert {"core.openfeature.dev/FeatureFlag", "core.openfeature.dev/FeatureFlagSource"} <= set(ofo.provides_crds)
    assert set(ofo.requires_crds) <= set(addons["cert-manager"].spec.provides_crds)
    assert addons["cert-manager"].spec.sync_wave < ofo.sync_wave


def test_without_cert_manager_the_operator_addon_fails_the_contract_check(repo: Path):
    (repo / "catalog/addons/cert-manager.yaml").unlink()
    with pytest.raises(CatalogErrors) as caught:
        pipeline.build(repo)
    found = [e for e in caught.value.errors if "cert-manager.io/Certificate" in e.message]
    assert found and all(str(e.location.path) == "catalog/addons/open-feature-operator.yaml" for e in found)


def test_a_tenant_override_changes_only_that_tenant(repo: Path):
    override(repo, "globex", "prod", {"services": {"web": {"flags": {"new-checkout": {"default_variant": "on"}}}}})
    build = pipeline.build(repo)
    served = {
        d.name: _flag_docs(build, "prod", d.name, "web")["FeatureFlag"]["spec"]["flagSpec"]["flags"]["new-checkout"]["defaultVariant"]
        for d in build.model.in_environment("prod")
        if any(s.name == "web" for s in d.services)
    }
    assert served["globex"] == "on" and {v for k, v in served.items() if k != "globex"} == {"off"}


def _refused(companyos, repo: Path, needle: str) -> list[dict[str, Any]]:
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err and snapshot(repo) == before
    found = [e for e in errors_of(result.err) if needle in e["message"]]
    assert found, result.err
    return found


def test_a_default_variant_the_variants_do_not_name_is_an_error_at_the_layer(companyos, repo):
    path = repo / "environments/prod.yaml"
    edit_yaml(
        path,
        lambda d: (
            d.setdefault("settings", {})
            .setdefault("services", {})
            .update({"web": {"flags": {"new-checkout": {"default_variant": "maybe"}}}})
        ),
    )
    [error, *_] = _refused(companyos, repo, "default_variant 'maybe' is not one of the variants")
    assert error["path"] == "environments/prod.yaml"
    assert int(error["line"]) == line_of(path, "default_variant", after="new-checkout")


def test_variants_of_mixed_types_are_refused(companyos, repo):
    path = repo / "catalog/services/web.yaml"
    edit_yaml(path, lambda d: d["defaults"]["flags"]["new-checkout"]["variants"].update({"on": "yes"}))
    [error, *_] = _refused(companyos, repo, "variants mix value types")
    # A property of the whole mapping has no single line: reported per deployment, naming the setting.
    assert "services.web.flags.new-checkout.variants" in error["message"]
