"""Add-on health gating: the root Application syncs the add-on Applications in waves before
the tenants' ApplicationSets and namespace Applications, and Argo CD's controller values
restore the Application health check, without which a wave of Applications counts as healthy
the moment the objects exist (so tenants would not wait for their add-ons)."""

from __future__ import annotations

import fnmatch
from typing import Any

import yaml

from generator import pipeline
from generator.targets import addons
from generator.targets.argocd import target as argocd

WAVE = "argocd.argoproj.io/sync-wave"


def _docs(build: pipeline.Build, path: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(build.result.files[path].decode()) if d]


def _wave(doc: dict[str, Any]) -> int:
    return int((doc["metadata"].get("annotations") or {}).get(WAVE, "0"))


def test_controller_values_make_application_health_real(sample: pipeline.Build) -> None:
    for env in sample.model.environments:
        values = yaml.safe_load(sample.result.files[argocd.sharding_path(env.name)])
        script = values["configs"]["cm"][argocd.APPLICATION_HEALTH_KEY]
        assert script == argocd.APPLICATION_HEALTH_LUA
        # It reports the Application's own health, and Progressing until there is one.
        assert "hs.status = obj.status.health.status" in script and 'hs.status = "Progressing"' in script
        assert script.rstrip().endswith("return hs")


def test_every_addon_syncs_in_an_earlier_wave_of_the_same_root_than_any_tenant_application(sample: pipeline.Build) -> None:
    for env in sample.model.environments:
        root = next(d for d in _docs(sample, f"{argocd.argocd_dir(env.name)}/bootstrap.yaml") if d["kind"] == "Application")
        include = root["spec"]["source"]["directory"]["include"].strip("{}").split(",")
        synced = [p for p in sample.result.files if any(fnmatch.fnmatchcase(p, f"{argocd.argocd_dir(env.name)}/{i}") for i in include)]
        addon_apps = [d for d in _docs(sample, addons.addons_path(env.name)) if d["kind"] == "Application"]
        assert addons.addons_path(env.name) in synced and addon_apps
        tenant_side = [
            d
            for p in synced
            if p != addons.addons_path(env.name) and p.endswith(".yaml")
            for d in _docs(sample, p)
            if d["kind"] in ("ApplicationSet", "Application") and d["metadata"]["name"] != root["metadata"]["name"]
        ]
        assert any(d["kind"] == "ApplicationSet" for d in tenant_side), env.name
        latest_addon = max(_wave(d) for d in addon_apps)
        earliest_tenant = min(_wave(d) for d in tenant_side)
        assert latest_addon < earliest_tenant, (env.name, latest_addon, earliest_tenant)
