"""The promotion chain (CO011): every change is tried before production."""

from __future__ import annotations

from collections.abc import Iterator

from generator.catalog.load import Catalog
from generator.model.references import promotion_chain_errors
from generator.model.resolve import Model
from generator.policy.core import Violation, rule


def _chain(catalog: Catalog) -> Iterator[Violation]:
    for error in promotion_chain_errors(catalog):
        yield Violation("CO011", error.location, error.message)


@rule(
    "CO011",
    "promotion-chain",
    "Environments form one promotion chain (dev -> stage -> prod), so every change is tried before production.",
    waivable=False,
    catalog_check=_chain,
)
def promotion_chain(model: Model) -> Iterator[Violation]:
    # Also enforced while loading (references), because resolving needs a chain; kept here
    # so the rule is listed, documented and reported with its id.
    yield from _chain(model.catalog)
