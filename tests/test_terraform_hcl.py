"""The HCL layout pass: terraform fmt's alignment rule, blank-line tidying, idempotence."""

from __future__ import annotations

from generator.terraform_hcl import format_hcl


def test_aligns_consecutive_single_line_attributes():
    out = format_hcl('module "x" {\n  source = "a"\n  version = "1"\n}\n')
    assert out == 'module "x" {\n  source  = "a"\n  version = "1"\n}\n'


def test_multi_line_value_blank_line_and_nesting_end_a_run():
    text = (
        'module "x" {\n'
        '  a = 1\n'
        '  long_name = 2\n'
        '\n'
        '  b = 3\n'
        '  tags = {\n'
        '    k = "v"\n'
        '    longer = "w"\n'
        '  }\n'
        '  c = 4\n'
        '}\n'
    )
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
    text = 'x {\n\n\n  a = 1\n\n\n\n  b = 2\n\n}\n\n\ny {}\n\n'
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
    from generator.terraform_hcl import _scan, _scan_exact

    for path, data in sample.result.files.items():
        if path.endswith(".tf"):
            for line in data.decode().splitlines():
                assert _scan(line.lstrip()) == _scan_exact(line.lstrip()), (path, line)
