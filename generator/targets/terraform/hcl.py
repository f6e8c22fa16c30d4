"""The last step of every rendered ``.tf`` file: lay it out the way ``terraform fmt`` does.

Templates write the structure; this pass makes the whitespace canonical, so a reviewer's
diff shows only meaning and a later ``terraform fmt -check`` finds nothing to change:

* trailing whitespace removed, runs of blank lines collapsed to one, no blank line right
  after an opening brace or right before a closing one;
* the ``=`` of consecutive single-line attributes aligned one space after the longest name,
  which is hclwrite's rule: an attribute whose value opens a multi-line bracket, a blank
  line, a comment line or a block header ends the run.

The scanner understands strings and ``${...}`` interpolation, so an ``=`` or a brace inside a
string is never mistaken for syntax. Indentation is the template's job (two spaces per level).
"""

from __future__ import annotations

import functools
import re

_OPEN, _CLOSE = "{[(", "}])"
#: A string literal without interpolation (most of them): its contents are never syntax.
_PLAIN_STRING = re.compile(r'"(?:[^"\\$%]|\\.|[$%](?!\{))*"')
_ASSIGN = re.compile(r"(?<![=!<>])=(?![=>])")
#: Entries each memo of this pass keeps: the lines and paragraphs every tenant's roots share
#: stay in it, a tenant's own are not asked again. At 1 << 17-18 the memos held ~245 MB in
#: each render worker for the same hit rates within 5 points (docs/benchmark.md, stop 49).
MEMO_ENTRIES = 1 << 12


def _blank_strings(match: re.Match[str]) -> str:
    return '"' + "x" * (len(match.group()) - 2) + '"'


def _net(text: str) -> int:
    return text.count("{") + text.count("[") + text.count("(") - text.count("}") - text.count("]") - text.count(")")


def _scan(line: str) -> tuple[int | None, int]:
    """(index of the line's assignment ``=`` or None, net bracket change of the line).

    Fast path: blank out plain string literals (same length, so indexes stay valid) and
    count on what is left; lines with interpolation take the exact scanner."""
    masked = _PLAIN_STRING.sub(_blank_strings, line) if '"' in line else line
    if "${" in masked or "%{" in masked:
        return _scan_exact(line)
    for marker in ("#", "//"):
        cut = masked.find(marker)
        if cut != -1:
            masked = masked[:cut]
    net = _net(masked)
    match = _ASSIGN.search(masked)
    if match is None:
        return None, net
    return (match.start() if _net(masked[: match.start()]) == 0 else None), net


def _scan_exact(line: str) -> tuple[int | None, int]:
    """Character scanner that tracks strings and ``${...}`` nesting exactly."""
    stack: list[list[int] | str] = []  # "s" = inside a string; [depth] = inside ${...}
    net = 0
    assign: int | None = None
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        top = stack[-1] if stack else None
        if top == "s":
            if ch == "\\" or line.startswith(("$$", "%%"), i):
                i += 2
                continue
            if ch == '"':
                stack.pop()
            elif ch in "$%" and line.startswith("{", i + 1):
                stack.append([0])
                i += 2
                continue
            i += 1
            continue
        if ch == '"':
            stack.append("s")
        elif ch == "#" or line.startswith("//", i):
            break
        elif ch in _OPEN:
            if isinstance(top, list):
                top[0] += 1
            else:
                net += 1
        elif ch in _CLOSE:
            if isinstance(top, list):
                if top[0] == 0:
                    stack.pop()
                else:
                    top[0] -= 1
            else:
                net -= 1
        elif ch == "=" and not stack and assign is None and net == 0:
            prev = line[i - 1] if i else ""
            nxt = line[i + 1] if i + 1 < n else ""
            if prev not in "=!<>" and nxt not in "=>":
                assign = i
        i += 1
    return assign, net


_TRAILING_SPACE = re.compile(r"[ \t]+(?=\n)")


_PLAIN_VALUE = r'(?:"[^"\\$%]*"|[\w.\-]+)'
#: ``name = value`` where the value is a plain string, a bare word (number, bool,
#: reference) or a flat list of those: most attribute lines, and none needs the scanner.
_SIMPLE_ATTRIBUTE = re.compile(rf"( *)([A-Za-z_][\w-]*) = ({_PLAIN_VALUE}|\[(?:{_PLAIN_VALUE}(?:, {_PLAIN_VALUE})*)?\])")


@functools.lru_cache(maxsize=MEMO_ENTRIES)
def _line(line: str) -> tuple[int, str, str] | str:
    """``(indent, name, value)`` for a single-line attribute, else the line as it stays."""
    if "=" not in line:  # no assignment can be found in it (block headers, brackets: ~45% of lines)
        return line
    simple = _SIMPLE_ATTRIBUTE.fullmatch(line)
    if simple is not None:
        return len(simple[1]), simple[2], simple[3]
    return _line_scanned(line)


def _line_scanned(line: str) -> tuple[int, str, str] | str:
    """``_line`` for any line, through the scanner."""
    stripped = line.lstrip(" ")
    if not stripped or stripped.startswith(("#", "//")):
        return line
    assign, net = _scan(stripped)
    if assign is None:
        return line
    indent = len(line) - len(stripped)
    name, value = stripped[:assign].rstrip(), stripped[assign + 1 :].strip()
    if net != 0:  # the value opens a multi-line bracket: spaced, never padded
        return f"{' ' * indent}{name} = {value}"
    return indent, name, value


def format_hcl(text: str) -> str:
    """``text`` with canonical blank lines and aligned ``=``; idempotent.

    Alignment runs never cross a blank line, so the text is laid out one paragraph (the
    lines between blank lines) at a time, and paragraphs repeat a lot between roots of the
    same shape: each distinct one is laid out once per process."""
    if " \n" in text or "\t\n" in text or text.endswith((" ", "\t")):
        text = _TRAILING_SPACE.sub("", text.rstrip(" \t"))
    chunks = [chunk.strip("\n") for chunk in text.split("\n\n")]
    paragraphs: list[str] = []
    for chunk in filter(None, chunks):
        # No blank line right after an opening bracket or right before a closing one: such
        # chunks join the paragraph before them (and so its alignment runs).
        if paragraphs and (paragraphs[-1][-1] in _OPEN or chunk.lstrip(" ")[:1] in ("}", "]", ")")):
            paragraphs[-1] += "\n" + chunk
        else:
            paragraphs.append(chunk)
    if not paragraphs:
        return "\n"
    return "\n\n".join(map(_paragraph, paragraphs)) + "\n"


@functools.lru_cache(maxsize=MEMO_ENTRIES)
def _paragraph(text: str) -> str:
    """Lines without blank ones between them, with every run of ``=`` aligned: consecutive
    attributes at one indent. One pass, each run laid out as it ends."""
    result: list[str] = []
    run: list[tuple[int, str, str]] = []
    for item in map(_line, text.split("\n")):
        if isinstance(item, str):
            if run:
                _aligned(run, result)
                run = []
            result.append(item)
        elif run and item[0] == run[0][0]:
            run.append(item)
        else:
            if run:
                _aligned(run, result)
            run = [item]
    if run:
        _aligned(run, result)
    return "\n".join(result)


def _aligned(run: list[tuple[int, str, str]], result: list[str]) -> None:
    """Append ``run``'s attributes, their ``=`` one space after the longest name."""
    pad = " " * run[0][0]
    width = max([len(entry[1]) for entry in run])
    result.extend([f"{pad}{entry[1].ljust(width)} = {entry[2]}" for entry in run])
