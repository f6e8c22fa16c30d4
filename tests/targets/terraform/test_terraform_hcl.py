"""The HCL layout pass: terraform fmt's alignment rule, blank-line tidying, idempotence."""

from __future__ import annotations

import json

import hypothesis
from hypothesis import strategies as st

from generator.targets.terraform.hcl import format_hcl


def test_aligns_consecutive_single_line_attributes():
    out = format_hcl('module "x" {\n  source = "a"\n  version = "1"\n}\n')
    assert out == 'module "x" {\n  source  = "a"\n  version = "1"\n}\n'


def test_multi_line_value_blank_line_and_nesting_end_a_run():
    text = 'module "x" {\n  a = 1\n  long_name = 2\n\n  b = 3\n  tags = {\n    k = "v"\n    longer = "w"\n  }\n  c = 4\n}\n'
    lines = format_hcl(text).splitlines()
    assert lines[1:3] == ["  a         = 1", "  long_name = 2"]
    assert lines[4] == "  b = 3"  # the blank line ended the first run
    assert lines[5] == "  tags = {"  # opens a bracket: never padded
    assert lines[6:8] == ['    k      = "v"', '    longer = "w"']
    assert lines[9] == "  c = 4"


def test_equals_and_braces_inside_strings_and_interpolation_are_not_syntax():
    text = 'x {\n  a = "b = {"\n  arn = "${trimprefix(var.u, "https://")}/x"\n  cmp = a == b ? "{" : "}"\n}\n'
    lines = format_hcl(text).splitlines()
    assert lines[1] == '  a   = "b = {"'
    assert lines[2] == '  arn = "${trimprefix(var.u, "https://")}/x"'
    assert lines[3] == '  cmp = a == b ? "{" : "}"'


def test_blank_lines_collapse_and_never_follow_an_open_brace():
    text = "x {\n\n\n  a = 1\n\n\n\n  b = 2\n\n}\n\n\ny {}\n\n"
    assert format_hcl(text) == "x {\n  a = 1\n\n  b = 2\n}\n\ny {}\n"


def test_comment_lines_end_a_run_and_are_kept():
    text = "x {\n  a = 1\n  # note\n  bb = 2\n}\n"
    assert format_hcl(text) == text


def test_idempotent_on_every_rendered_tf(sample):
    tf = {p: d.decode() for p, d in sample.result.files.items() if p.endswith(".tf")}
    assert tf
    for path, text in tf.items():
        assert format_hcl(text) == text, path
        assert "\t" not in text and "\r" not in text, path
        for line in text.splitlines():
            indent = len(line) - len(line.lstrip(" "))
            assert indent % 2 == 0, (path, line)


def test_escaped_interpolation_and_comments_after_values():
    text = 'x {\n  a = "$${not} {"\n  bb = 1 # c = {\n  ccc = "%%{x}"\n}\n'
    lines = format_hcl(text).splitlines()
    assert lines[1:4] == ['  a   = "$${not} {"', "  bb  = 1 # c = {", '  ccc = "%%{x}"']


def test_fast_path_agrees_with_the_exact_scanner(sample):
    from generator.targets.terraform.hcl import _scan, _scan_exact

    for path, data in sample.result.files.items():
        if path.endswith(".tf"):
            for line in data.decode().splitlines():
                assert _scan(line.lstrip()) == _scan_exact(line.lstrip()), (path, line)


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(st.text())
def test_hcl_string_fast_path_agrees_with_json_quoting(text):
    """Verbatim quoting is only a shortcut: every string must come out exactly as JSON
    quoting plus HCL's template-sequence escapes would write it."""
    from generator.formats.templating import hcl_value

    expected = json.dumps(text, ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")
    assert hcl_value(text) == expected


def test_hcl_value_scalars_and_collections():
    from generator.formats.templating import hcl_value

    assert [hcl_value(v) for v in (True, False, None, 0, -12, 2.5)] == ["true", "false", "null", "0", "-12", "2.5"]
    assert hcl_value(["a", 1, {"k-1": "x${y}", "1x": []}]) == '["a", 1, { k-1 = "x$${y}", "1x" = [] }]'


_LINES = [
    "",
    "  ",
    "\t",
    'x "y" {',
    "}",
    "  a = 1",
    '  long_name = "v = {"',
    "  tags = {",
    "  # note",
    "]",
    "  b = [",
    '    k = "${a.b}"',
    "  c = f(1) # z = {",
    "  }  ",
    "    ccc = true",
    ")",
]


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.lists(st.sampled_from(_LINES), max_size=40))
@hypothesis.example(["  c = f(1) # z = {", "", '  long_name = "v = {"'])  # a blank line dropped after a brace
def test_layout_is_idempotent_and_tidy(lines):
    once = format_hcl("\n".join(lines))
    assert format_hcl(once) == once
    assert "\n\n\n" not in once and not any(line != line.rstrip() for line in once.split("\n"))
    assert (once.endswith("\n") and not once.startswith("\n")) or once == "\n"


def test_simple_attribute_fast_path_agrees_with_the_scanner(sample):
    from generator.targets.terraform.hcl import _SIMPLE_ATTRIBUTE, _line, _line_scanned

    fast = 0
    for path, data in sample.result.files.items():
        if path.endswith(".tf"):
            for line in data.decode().splitlines():
                assert _line(line) == _line_scanned(line), (path, line)
                fast += _SIMPLE_ATTRIBUTE.fullmatch(line) is not None
    assert fast > 1000  # the fast path is really taken
    for line in ['  a = "x${y}"', '  b = "q\\"uote"', "  c = [1, [2]]", "  d = f(1)", "  e = 1 # x = {", '  "k" = 1']:
        assert _SIMPLE_ATTRIBUTE.fullmatch(line) is None, line


def _runs_by_scanning_ahead(text: str) -> str:
    """The alignment rule as first written (a run found by looking ahead from its first
    attribute): the reference the one-pass layout must agree with."""
    from generator.targets.terraform.hcl import _line_scanned

    lines = [_line_scanned(line) for line in text.split("\n")]
    result: list[str] = []
    i = 0
    while i < len(lines):
        item = lines[i]
        if isinstance(item, str):
            result.append(item)
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not isinstance(lines[j], str) and lines[j][0] == item[0]:
            j += 1
        width = max(len(entry[1]) for entry in lines[i:j])  # type: ignore[misc]
        result.extend(f"{' ' * item[0]}{entry[1].ljust(width)} = {entry[2]}" for entry in lines[i:j])  # type: ignore[misc]
        i = j
    return "\n".join(result)


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(
    st.lists(st.sampled_from([*_LINES, "  dd = 4", "    e = 5", "      fff = [1]", "    gggg = x.y"]), min_size=1, max_size=30)
)
@hypothesis.example(["  a = 1", "    bb = 2", "  ccc = 3"])  # an indent change alone ends a run
def test_one_pass_layout_agrees_with_scanning_ahead(lines):
    from generator.targets.terraform.hcl import _paragraph

    text = "\n".join(line for line in lines if line.strip())  # a paragraph: no blank line in it
    if text:
        assert _paragraph(text) == _runs_by_scanning_ahead(text)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.text(alphabet=st.characters(blacklist_characters="=\n")))
def test_a_line_without_an_equals_sign_stays_as_the_scanner_keeps_it(line):
    from generator.targets.terraform.hcl import _line, _line_scanned

    assert _line(line) == _line_scanned(line) == line
