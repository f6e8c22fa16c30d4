"""Jinja2, configured once: strict, deterministic, compiled a single time per run.

Templates come from the catalog loader (already read from ``templates/``), so rendering
never touches the disk. ``StrictUndefined`` turns a typo in a template into an error
instead of an empty string in a committed file.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
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


@functools.lru_cache(maxsize=1 << 12)  # the strings tenants share: 1 << 16 held their own too, for 72 % hits against 70 %
def _hcl_string(value: str) -> str:
    if _VERBATIM.fullmatch(value):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")


def _hcl_key(key: str) -> str:
    return key if key.replace("_", "a").replace("-", "a").isalnum() and not key[0].isdigit() else json.dumps(key)


class UnsafeValue(ValueError):
    """A value a filter cannot place safely in its target language (reported, never pasted)."""


#: Characters that end a line in YAML 1.1, HCL or a shell script (or that no generated
#: text should contain raw): C0/C1 controls, DEL, the Unicode line and paragraph separators
#: and the byte-order mark.
_LINE_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
#: First characters a YAML plain scalar may not start with (indicators, quotes, whitespace),
#: plus those that start numbers, merge keys and other implicitly typed scalars.
_PLAIN_FIRST = frozenset("-?:,[]{}#&*!|>'\"%@`<=~+0123456789 ")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def yaml_scalar(value: Any) -> str:
    """A YAML scalar for a block-context value (``key: <here>`` or ``- <here>``): written
    plain when every YAML 1.1 and 1.2 parser reads it back as the same string, else as a
    double-quoted scalar with every line break escaped. Non-strings go through
    :func:`emit.to_json`. Never use it inside a flow collection (``[...]``, ``{...}``)."""
    if not isinstance(value, str):
        return emit.to_json(value)
    if (
        value
        and value[0] not in _PLAIN_FIRST
        and not (value[0] == "." and (value[1:2] in ("", ".") or value[1:2].isdigit() or value.lower() in (".inf", ".nan")))
        and _LINE_UNSAFE.search(value) is None
        and ": " not in value
        and " #" not in value
        and not value.endswith((":", " "))
        and value.lower() not in _YAML_WORDS
        and "\\" not in value
    ):
        return value
    return emit.to_json(value)


def comment_text(value: Any) -> str:
    """``value`` made safe inside a ``#`` comment (YAML, HCL, shell): every character that
    could end the line is written as an escape, so the comment cannot grow new lines."""
    text = str(value)
    if _LINE_UNSAFE.search(text) is None:
        return text
    return _LINE_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def shell_word(value: Any) -> str:
    """One shell word (bash, the shell of ``run:`` steps): ``shlex.quote`` for printable
    one-line text; else an ANSI-C ``$'...'`` word whose line breaks and controls are escapes,
    so the word never spans lines of the script or of the YAML block around it."""
    text = str(value)
    if _LINE_UNSAFE.search(text) is None:
        return shlex.quote(text)
    body = text.replace("\\", "\\\\").replace("'", "\\'")
    return "$'" + _LINE_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", body) + "'"


def shell_join(words: Any) -> str:
    """A command line of ``words``, each a :func:`shell_word`."""
    return " ".join(shell_word(w) for w in words)


def gh_string(value: Any) -> str:
    """A GitHub Actions expression string literal (``'...'``, quotes doubled)."""
    text = str(value)
    if "}}" in text or _LINE_UNSAFE.search(text) is not None:
        raise UnsafeValue(f"{text!r} cannot be placed in a GitHub Actions expression")
    return "'" + text.replace("'", "''") + "'"


def gh_ident(value: Any) -> str:
    """A property name in a GitHub Actions expression (``outputs.<name>``)."""
    text = str(value)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", text) is None:
        raise UnsafeValue(f"{text!r} is not a GitHub Actions identifier")
    return text


def yaml_key(value: Any) -> str:
    """A mapping key (job id, output name): plain when it is an identifier, else refused;
    GitHub job ids and output names allow nothing else."""
    text = str(value)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", text) is None or text.lower() in _YAML_WORDS:
        raise UnsafeValue(f"{text!r} cannot be a key of a generated file")
    return text


FILTERS = {
    "yaml": emit.to_yaml,
    "json": emit.to_json,
    "hcl": hcl_value,
    "scalar": yaml_scalar,
    "comment": comment_text,
    "sh": shell_word,
    "shjoin": shell_join,
    "gh_string": gh_string,
    "gh_ident": gh_ident,
    "key": yaml_key,
}


@functools.lru_cache(maxsize=1)
def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept across processes (Jinja's per-user cache folder, owner-only;
    each entry checked against its template's source), since compiling the template set is
    most of a small render. Output bytes do not depend on it; none when the folder is unsafe."""
    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):
        return None


@functools.lru_cache(maxsize=4)
def _environment(sources: tuple[tuple[str, str], ...]) -> jinja2.Environment:
    """One environment per distinct template set: renders of unchanged templates (tests,
    repeated builds in one process) reuse its compiled templates instead of recompiling."""
    env = jinja2.Environment(
        loader=jinja2.DictLoader(dict(sources)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=-1,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters.update(FILTERS)
    return env


class Templates:
    """A compiled template set. Build one per render; templates compile on first use."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.env = _environment(tuple(sorted(sources.items())))
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
        except UnsafeValue as exc:
            raise CatalogErrors([CatalogError(Location(f"templates/{name}"), f"unsafe value: {exc}")]) from None

    @staticmethod
    def path(name: str) -> str:
        """Repository-relative path of a template, for headers and the manifest."""
        return f"templates/{name}"
