"""The sample catalog renders and the committed tree matches it."""

from generator.output import tree
from helpers.repo import REPO


def test_committed_rendered_tree_matches_catalog(sample):
    st = tree.status(sample.result, REPO)
    assert st.clean, st.as_dict()
