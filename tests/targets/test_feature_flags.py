"""OpenFeature flags (issue 16 item 7): each tenant's FeatureFlag and FeatureFlagSource per
environment and service with flags, valid against the vendored OpenFeature CRD schemas and
flagd's own flag schema, holding what the layers and the targeting rules (by tenant, tier and
environment; a variant or a per-user percentage rollout) decide for that deployment; the service's pods name the source so
flagd is injected; bad flags are ``path:line:col`` errors with nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
from referencing.jsonschema import DRAFT7

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


def _new_checkout(build: pipeline.Build, env: str, tenant: str) -> dict[str, Any]:
    return _flag_docs(build, env, tenant, "web")["FeatureFlag"]["spec"]["flagSpec"]["flags"]["new-checkout"]


def test_layers_and_targeting_rules_decide_what_each_deployment_serves(sample):
    # The sample: web declares new-checkout off, rule 1 keeps regulated tenants off, rule 2 rolls
    # 20% of stage's users on; environments/dev.yaml serves on where no rule decides.
    seen = set()
    for d in sample.model.deployments:
        if not any(s.name == "web" for s in d.services):
            continue
        flag = _new_checkout(sample, d.env, d.name)
        assert flag["variants"] == {"on": True, "off": False}
        assert flag["defaultVariant"] in flag["variants"]
        if d.tier.name == "regulated":
            want = ("off", 1, None)
        elif d.env == "stage":
            want = ("off", 2, {"fractional": [["off", 80], ["on", 20]]})
        else:
            want = ("on" if d.env == "dev" else "off", None, None)
        got = (flag["defaultVariant"], flag["metadata"].get("targetingRule"), flag.get("targeting"))
        assert got == want, (d.name, d.env)
        seen.add(want[1])
    assert seen == {1, 2, None}  # the sample exercises a variant rule, a rollout rule and no rule


def _flagd_validator() -> jsonschema.Draft7Validator:
    """flagd's own flag-configuration schema (vendored, targeting rules included)."""
    folder = vendor.VENDOR_DIR / "flagd"
    flags, targeting = (json.loads((folder / f"{n}.json").read_text()) for n in ("flags", "targeting"))
    registry = referencing.Registry().with_resources([(doc["$id"], DRAFT7.create_resource(doc)) for doc in (flags, targeting)])
    # The root's $ref hides its $id under draft 7: enter through the absolute URI.
    return jsonschema.Draft7Validator({"$ref": flags["$id"]}, registry=registry)


def test_every_rendered_flag_set_is_a_valid_flagd_configuration(sample):
    validator = _flagd_validator()
    checked = 0
    for path, data in sample.result.files.items():
        if "/flags/" not in path or not path.startswith("rendered/argocd/"):
            continue
        [flag_doc] = [d for d in load_yaml_docs(data) if d["kind"] == "FeatureFlag"]
        config = {"flags": flag_doc["spec"]["flagSpec"]["flags"]}
        assert [e.message for e in validator.iter_errors(config)] == [], path
        checked += 1
    assert checked
    # Planted: a misspelt operator and a malformed split must fail the same validator.
    x = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}
    assert list(validator.iter_errors({"flags": {"x": {**x, "targeting": {"fractionl": [["on", 100]]}}}}))
    assert list(validator.iter_errors({"flags": {"x": {**x, "targeting": {"fractional": "on"}}}}))


def _set_rules(path: Path, rules: list[dict[str, Any]]) -> None:
    def edit(d: dict[str, Any]) -> None:
        d.setdefault("settings", {}).setdefault("services", {}).setdefault("web", {}).setdefault("flags", {})["new-checkout"] = {
            "targeting": rules
        }

    edit_yaml(path, edit)


def test_a_tenant_layer_rule_decides_for_that_tenant_only(repo: Path):
    _set_rules(repo / "tenants/globex.yaml", [{"environments": ["prod"], "variant": "on"}])
    build = pipeline.build(repo)
    assert _new_checkout(build, "prod", "globex")["defaultVariant"] == "on"
    assert _new_checkout(build, "stage", "globex")["defaultVariant"] == "off"  # the rule names prod only
    assert "targeting" not in _new_checkout(build, "stage", "globex")  # a list replaces: web's stage rollout is gone for globex
    assert _new_checkout(build, "stage", "acme")["metadata"]["targetingRule"] == 1  # ...and kept for the others


@pytest.mark.parametrize(
    ("field", "name", "says"),
    [
        ("tenants", "nobody", "unknown tenant 'nobody'"),
        ("tiers", "gold", "unknown tier 'gold'"),
        ("environments", "mars", "unknown environment 'mars'"),
    ],
)
def test_a_rule_naming_an_unknown_name_is_an_error_at_that_name(companyos, repo, field, name, says):
    path = repo / "environments/prod.yaml"
    _set_rules(path, [{"tenants": ["acme"], "variant": "on"}, {field: ["acme" if field == "tenants" else "prod", name], "variant": "on"}])
    [error] = _refused(companyos, repo, says)
    assert error["path"] == "environments/prod.yaml"
    text = path.read_text().splitlines()
    assert name in text[int(error["line"]) - 1]  # the line of the unknown name itself
    assert text[int(error["line"]) - 1].index(name) + 1 == int(error["col"])


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ({"variant": "maybe"}, "targeting rule 1 serves 'maybe', not a variant"),
        ({"rollout": {"on": 50, "maybe": 50}}, "targeting rule 1 serves 'maybe', not a variant"),
        ({"rollout": {"on": 50, "off": 40}}, "rollout percentages sum to 90, not 100"),
        ({"variant": "on", "rollout": {"on": 100}}, "exactly one of `variant` and `rollout`"),
        ({"tiers": ["standard"]}, "exactly one of `variant` and `rollout`"),
    ],
)
def test_a_malformed_rule_is_an_error_in_the_layer_that_wrote_it(companyos, repo, rule, says):
    _set_rules(repo / "environments/prod.yaml", [rule])
    [error, *_] = _refused(companyos, repo, says)
    assert error["path"] == "environments/prod.yaml"


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
