"""CompanyOS: render a declarative platform catalog into the files GitOps tools apply.

The library API is small on purpose::

    from generator import load_catalog, resolve, render
    catalog = load_catalog(Path("."))
    model = resolve(catalog)
    result = render(model)          # {relative path: bytes}, deterministic

Everything that touches the file system lives in ``load`` (reading) and ``tree`` (writing);
the steps in between are pure functions, which is what makes ``check`` trustworthy.
"""

from generator.errors import CatalogError, CatalogErrors, Location
from generator.load import load_catalog
from generator.model import resolve
from generator.render import render

__all__ = ["CatalogError", "CatalogErrors", "Location", "load_catalog", "resolve", "render"]
