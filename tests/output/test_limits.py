"""Consumer limits examined per file where it is finished (``limits.facts``, in the render
workers) and judged once (``limits.judge``): the shortcut that skips scanning a file whose
metadata has no line long enough for a breach must never hide one, and a breach in a
rendered file fails a real render, serial and parallel, at the owner's catalog line."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from generator import pipeline
from generator.errors import CatalogErrors
from generator.formats import emit
from generator.model.resolve import Model
from generator.output import limits, parallel, render
from generator.targets.base import RenderedFile
from helpers.repo import REPO

sys.path.insert(0, str(REPO / "bench"))
import run as bench  # bench/run.py: the benchmark's catalog generator

PATH = "rendered/argocd/dev/namespaces/planted.yaml"
# Characters that change a value's emitted length: quotes, escapes, multi-byte, controls.
characters = st.sampled_from('ab-."\\:# \u00e9\u2028\x01\U0001f600')
# Mostly around the 63-character limit, where a miscounted byte would hide a breach.
values = st.one_of(
    st.text(characters, max_size=10),
    st.text(characters, min_size=55, max_size=75),
    st.text(st.sampled_from("ab"), min_size=60, max_size=66),  # plain: raw length is the length
)
kinds = st.sampled_from(["Namespace", "ConfigMap", "Application", "Service"])


def truth(data: bytes) -> list[str]:
    """The name and label breaches of every object, from a full YAML parse."""
    out = []
    for doc in yaml.safe_load_all(data):
        if not isinstance(doc, dict):
            continue
        kind, meta = doc["kind"], doc["metadata"]
        what = f"{kind} {meta['name']}"
        limit = limits.MAX_LABEL if kind in ("Namespace", "Application", "Service") else limits.MAX_NAME
        if len(meta["name"]) > limit:
            out.append(f"{what}: name is {len(meta['name'])} characters; a {kind} name may have at most {limit}")
        for key, value in meta.get("labels", {}).items():
            if len(value) > limits.MAX_LABEL:
                out.append(f"{what}: label {key} is {len(value)} characters; label values may have at most {limits.MAX_LABEL}")
    return out


def found(data: bytes) -> list[str]:
    facts = limits.facts(PATH, data)
    assert facts is not None
    return [problem for _, _, problem, _ in facts.breaches]


@settings(max_examples=300, deadline=None)
@example([("Namespace", "n" * 64, {})])  # at the limits: a line of 72
@example([("ConfigMap", "x", {"a": "a" * 64})])  # and of 71
@example([("Service", "s" * 63, {"a": "a" * 63})])  # one under
@given(
    st.lists(
        st.tuples(kinds, values, st.dictionaries(st.sampled_from(["a", "companyos.io/x"]), values, max_size=2)), min_size=1, max_size=3
    )
)
def test_facts_find_every_name_and_label_breach_a_full_parse_finds(objects: list[tuple[str, str, dict[str, str]]]) -> None:
    docs = [
        {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "labels": labels}, "data": {"k": "v" * 90}}
        for kind, name, labels in objects
    ]
    data = emit.finalize("---\n".join(emit.to_yaml(d) + "\n" for d in docs), ["tenants/acme.yaml"])
    assert found(data) == truth(data)


def test_files_no_limit_applies_to_have_no_facts() -> None:
    assert limits.facts("rendered/terraform/dev/shared/main.tf", b'resource "x" "y" {}\n') is None
    assert limits.facts("rendered/helm/dev/acme/api.yaml", b"name: " + b"x" * 300 + b"\n") is None


class Planted:
    """A target that adds one Namespace whose name is over the 63 a Namespace may have."""

    NAME = "planted"

    def render(self, model: Model, templates: Any) -> Iterable[RenderedFile]:
        doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n" * 64, "labels": {"companyos.io/tenant": "acme"}}}
        yield RenderedFile(path=PATH, text=emit.to_yaml(doc) + "\n", sources=("tenants/acme.yaml",))


def planted(model: Model, jobs: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(render, "TARGETS", [*render.TARGETS, Planted()])
    with pytest.raises(CatalogErrors) as raised:
        render.render(model, jobs=jobs)
    return [str(e) for e in raised.value.errors]


def test_a_breach_in_a_rendered_file_fails_the_render_at_its_owner(sample: pipeline.Build, monkeypatch: pytest.MonkeyPatch) -> None:
    where = sample.model.catalog.tenants["acme"].locate("name", key=True)
    assert planted(sample.model, 1, monkeypatch) == [
        f"{where}: {PATH}: Namespace {'n' * 64}: name is 64 characters; a Namespace name may have at most 63"
    ]


def test_a_partial_render_examines_nothing(sample: pipeline.Build, monkeypatch: pytest.MonkeyPatch) -> None:
    examined: list[str] = []
    real = limits.facts

    def spy(path: str, data: bytes) -> limits.Facts | None:
        examined.append(path)
        return real(path, data)

    monkeypatch.setattr(limits, "facts", spy)
    result = render.render(sample.model, targets=[Planted()])  # partial: no check, no facts
    assert PATH in result.files and examined == []


@pytest.fixture(scope="module")
def large_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Model]:
    root = tmp_path_factory.mktemp("large") / "repo"
    bench.make_catalog(root, 22)
    model = pipeline.resolve_only(root)
    assert parallel.usable(model, 2)
    yield model


def test_the_render_workers_find_the_breach_too(large_model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    messages = planted(large_model, 2, monkeypatch)
    assert len(messages) == 1 and messages[0].endswith(
        f"{PATH}: Namespace {'n' * 64}: name is 64 characters; a Namespace name may have at most 63"
    )
