"""The catalog's per-environment schema versions (``migrations.versions``) reach the migration
Job: every container of each environment's Job receives that environment's target version."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from generator import pipeline
from generator.targets.migrations import TARGET_VERSION_ENV
from helpers.catalog_edit import edit_yaml
from helpers.repo import copy_repo

JOBS = re.compile(r"^rendered/migrations/(?P<env>[^/]+)/(?P<tenant>[^/]+)/(?P<service>[^/]+)\.yaml$")


def targets(files: dict[str, bytes]) -> dict[tuple[str, str, str], set[str]]:
    """(env, tenant, service) -> the target versions the Job's containers receive."""
    out: dict[tuple[str, str, str], set[str]] = {}
    for path, data in files.items():
        m = JOBS.match(path)
        if not m:
            continue
        job: dict[str, Any] = next(d for d in yaml.safe_load_all(data) if d and d["kind"] == "Job")
        pod = job["spec"]["template"]["spec"]
        containers = [*pod["initContainers"], *pod["containers"]]
        assert [c["name"] for c in containers] == ["plan", "dry-run", "apply"]
        out[(m["env"], m["tenant"], m["service"])] = {
            var.get("value", "<missing>") for c in containers for var in c["env"] if var["name"] == TARGET_VERSION_ENV
        } or {"<missing>"}
    return out


def test_each_environment_job_migrates_to_its_catalog_version(sample: pipeline.Build) -> None:
    found = targets(sample.result.files)
    assert found
    for (env, _tenant, service), versions in found.items():
        declared = sample.model.services[service].migrations
        assert declared is not None
        assert versions == {str(declared.versions[env])}, (env, service, versions)
    by_env = {env: v for (env, _t, _s), v in found.items()}
    # the sample's api runs 42 in dev and 41 in stage and prod: the Jobs differ accordingly
    assert by_env["dev"] == {"42"} and by_env["stage"] == {"41"} and by_env["prod"] == {"41"}


def test_changing_a_version_moves_only_that_environment(tmp_path: Path, sample: pipeline.Build) -> None:
    repo = copy_repo(tmp_path / "repo")
    edit_yaml(repo / "catalog/services/api.yaml", lambda data: data["migrations"]["versions"].__setitem__("stage", 42))
    before, after = targets(sample.result.files), targets(pipeline.build(repo).result.files)
    changed = {key for key in after if after[key] != before[key]}
    assert changed and {env for env, _t, _s in changed} == {"stage"}
    assert all(after[key] == {"42"} for key in changed)
