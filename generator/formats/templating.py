"""Jinja2, configured once: strict, deterministic, compiled a single time per run.

Templates come from the catalog loader (already read from ``templates/``), so rendering
never touches the disk. ``StrictUndefined`` turns a typo in a template into an error
instead of an empty string in a committed file.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import jinja2

from generator.errors import CatalogError, CatalogErrors, Location
from generator.formats import emit


def hcl_value(value: Any) -> str:
    """A Python value as an HCL literal (strings, numbers, bools, lists, maps)."""
    if isinstance(value, str):
        return _hcl_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(hcl_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_hcl_key(k)} = {hcl_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot express {type(value).__name__} in HCL")


#: Strings that JSON and HCL quote verbatim: no quote, backslash, control character or
#: template sequence start. Most strings in a root are like this, and names repeat a lot.
_VERBATIM = re.compile(r'[^"\\\x00-\x1f$%]*')


@functools.lru_cache(maxsize=1 << 16)
def _hcl_string(value: str) -> str:
    if _VERBATIM.fullmatch(value):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")


def _hcl_key(key: str) -> str:
    return key if key.replace("_", "a").replace("-", "a").isalnum() and not key[0].isdigit() else json.dumps(key)


FILTERS = {
    "yaml": emit.to_yaml,
    "json": emit.to_json,
    "hcl": hcl_value,
}


class Templates:
    """A compiled template set. Build one per render; templates compile on first use."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.DictLoader(sources),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
            cache_size=-1,
        )
        self.env.filters.update(FILTERS)
        self._compiled: dict[str, jinja2.Template] = {}

    def get(self, name: str) -> jinja2.Template:
        template = self._compiled.get(name)
        if template is None:
            try:
                template = self.env.get_template(name)
            except jinja2.TemplateSyntaxError as exc:
                raise CatalogErrors(
                    [CatalogError(Location(f"templates/{name}", exc.lineno or 1, 1), f"template syntax error: {exc.message}")]
                ) from None
            except jinja2.TemplateNotFound:
                raise CatalogErrors([CatalogError(Location(f"templates/{name}"), "template not found")]) from None
            self._compiled[name] = template
        return template

    def render(self, name: str, **context: Any) -> str:
        try:
            return self.get(name).render(**context)
        except jinja2.UndefinedError as exc:
            raise CatalogErrors([CatalogError(Location(f"templates/{name}"), f"template error: {exc.message}")]) from None

    @staticmethod
    def path(name: str) -> str:
        """Repository-relative path of a template, for headers and the manifest."""
        return f"templates/{name}"
