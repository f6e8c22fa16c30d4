"""``covers``: the glob match the Terraform target uses to decide whether a rendered IAM
grant covers a secret's ARN must answer exactly as ``fnmatchcase`` does (it replaced it
because fnmatch compiled one regex per tenant's pattern: 3,000 compiles at 1000 tenants)."""

from __future__ import annotations

from fnmatch import fnmatchcase

from hypothesis import example, given, settings
from hypothesis import strategies as st

from generator.targets.contracts import covers

# A small alphabet makes overlaps, repeats and empty parts common; "?" and "[" take the
# fnmatch path and must still agree.
alphabet = st.sampled_from("ab:/-*?[]")
words = st.text(alphabet, max_size=12)


@settings(max_examples=1000, deadline=None)
@given(words, st.text(st.sampled_from("ab:/-*"), max_size=12))
@example("a*a", "a")
@example("*a*a*", "aa")
@example("ab*ba", "aba")
@example("**", "")
@example("a*", "a\nb")
def test_covers_answers_as_fnmatchcase(pattern: str, text: str) -> None:
    assert covers(pattern, text) == fnmatchcase(text, pattern)


def test_covers_on_the_secret_reader_grants() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:companyos/dev/acme/api/stripe-AbCdEf"
    assert covers("arn:aws:secretsmanager:eu-west-1:111122223333:secret:companyos/dev/acme/*", arn)
    assert not covers("arn:aws:secretsmanager:eu-west-1:111122223333:secret:companyos/dev/acmecorp/*", arn)
    assert not covers("arn:aws:secretsmanager:eu-west-1:444455556666:secret:companyos/dev/acme/*", arn)
    assert covers("arn:aws:secretsmanager:*:111122223333:secret:companyos/*/acme/*-??????", arn)
    assert not covers("arn:aws:secretsmanager:eu-west-1:111122223333:secret:companyos/dev/acme/api/stripe", arn)
