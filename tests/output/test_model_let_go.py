"""The CLI's ``render`` and ``check`` let the model go before the write and the comparison
(``pipeline.Made``): at 10,000 tenants x 3 the write's growth then fits in the model's
memory. Whatever the record needs from the model (the catalog's parses and memo, the
waiver notes) is taken first, and still written only when the tree is clean."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from generator import pipeline
from generator.model.resolve import Model
from generator.output import checkcache, tree
from generator.output.parse_store import MEMO_PATH, PARSES_PATH
from helpers.catalog_edit import edit_yaml


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], list[bool]]]:
    """Each model resolved is watched; ``seen(stage)``: whether one was still alive each time
    ``tree.<stage>`` ran (after a collection)."""
    models: list[weakref.ref[Model]] = []
    alive: dict[str, list[bool]] = {"write": [], "status": []}
    resolve_only = pipeline.resolve_only

    def resolving(*args: Any, **kwargs: Any) -> Model:
        model = resolve_only(*args, **kwargs)
        models.append(weakref.ref(model))
        return model

    def watching(stage: str) -> Callable[..., Any]:
        real = getattr(tree, stage)

        def run(*args: Any, **kwargs: Any) -> Any:
            gc.collect()
            alive[stage].append(any(ref() is not None for ref in models))
            return real(*args, **kwargs)

        return run

    monkeypatch.setattr(pipeline, "resolve_only", resolving)
    for stage in alive:
        monkeypatch.setattr(tree, stage, watching(stage))
    yield alive.__getitem__


@pytest.mark.parametrize("full", [False, True])
def test_render_writes_without_the_model_and_records_the_clean_tree(repo: Path, watched: Callable[[str], list[bool]], full: bool) -> None:
    edit_yaml(repo / "tenants/acme.yaml", lambda data: data.update(owner="platform@example.com"))
    (repo / PARSES_PATH).unlink(missing_ok=True)
    (repo / MEMO_PATH).unlink(missing_ok=True)
    done = pipeline.render_tree(repo, full=full)
    assert watched("write") == [False]
    assert done.built is not None and done.report.written and not hasattr(done.built, "model")
    assert (repo / PARSES_PATH).is_file() and (repo / MEMO_PATH).is_file()  # taken before, written after
    inputs = checkcache.inputs_digest(repo)
    assert checkcache.known_clean(repo, inputs) == done.files  # the record: the tree as written
    assert pipeline.render_tree(repo).built is None  # nothing to do


def test_the_library_s_render_keeps_the_model(repo: Path, watched: Callable[[str], list[bool]]) -> None:
    built, _ = pipeline.render_to_disk(repo, full=True)
    assert watched("write") == [True] and isinstance(built.model, Model)


@pytest.mark.parametrize("full", [False, True])
def test_check_compares_without_the_model(repo: Path, watched: Callable[[str], list[bool]], full: bool) -> None:
    pipeline.render_tree(repo)
    made, status = pipeline.check_tree(repo, full=full)
    assert status.clean and watched("status")[-1] is False
    assert made is not None and not hasattr(made, "model")
    built, status = pipeline.check(repo, full=full)
    assert status.clean and watched("status")[-1] is True and built is not None and isinstance(built.model, Model)


def test_a_write_that_finds_an_unmanaged_file_records_nothing(repo: Path, watched: Callable[[str], list[bool]]) -> None:
    """The parses and memo were encoded before the write; the disk stays as it was."""
    pipeline.render_tree(repo)
    parses, memo = (repo / PARSES_PATH).read_bytes(), (repo / MEMO_PATH).read_bytes()
    (repo / "rendered/helm/prod/stray.yaml").write_text("a: 1\n")
    edit_yaml(repo / "tenants/acme.yaml", lambda data: data.update(owner="platform@example.com"))
    done = pipeline.render_tree(repo)
    assert done.report.unmanaged == ["rendered/helm/prod/stray.yaml"] and watched("write")[-1] is False
    assert (repo / PARSES_PATH).read_bytes() == parses and (repo / MEMO_PATH).read_bytes() == memo
    assert checkcache.known_clean(repo, checkcache.inputs_digest(repo)) is None
