"""Rendering on several processes gives exactly the bytes of a serial render."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from generator import parallel
from generator.load import load_catalog
from generator.model import resolve
from generator.render import render

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import run as bench  # noqa: E402  (the benchmark's synthetic catalog generator)


@pytest.fixture(scope="module")
def large_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("large") / "repo"
    bench.make_catalog(root, 40)
    model = resolve(load_catalog(root))
    assert len(model.deployments) >= parallel.MIN_DEPLOYMENTS
    return model


def test_parallel_render_is_byte_identical(large_model):
    assert parallel.usable(large_model, 2)
    serial = render(large_model, jobs=1)
    assert render(large_model, jobs=2).files == serial.files
    assert render(large_model, jobs=3).files == serial.files


def test_every_per_environment_unit_sees_only_its_environment(large_model):
    from generator.targets import TARGETS

    work = parallel.units(large_model, TARGETS)
    envs = [e.name for e in large_model.environments]
    per_env = [t for t in TARGETS if getattr(t, "PER_ENVIRONMENT", False)]
    assert len(work) == len(per_env) * len(envs) + (len(TARGETS) - len(per_env))
    for env in envs:
        scoped = parallel.restrict(large_model, env)
        assert {d.env for d in scoped.deployments} == {env}


def test_worker_errors_keep_their_locations():
    import pickle

    from generator.errors import CatalogError, CatalogErrors, Location

    original = CatalogErrors([CatalogError(Location("templates/x.j2", 3, 1), "boom")])
    copy = pickle.loads(pickle.dumps(original))
    assert copy.errors == original.errors and str(copy) == str(original)
