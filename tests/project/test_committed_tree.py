"""The sample catalog renders and the committed tree matches it."""

from conftest import REPO

from generator.output import tree


def test_committed_rendered_tree_matches_catalog(sample):
    st = tree.status(sample.result, REPO)
    assert st.clean, st.as_dict()
