"""`kube.client.merge_patch`: the smallest merge patch that turns one status into another,
checked by applying it with the sandbox's RFC 7386 implementation (what the API server does)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ecs_operator.kube.client import merge_patch
from ecs_sandbox.patching import merge_patch as apply_merge_patch

scalars = st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b", ""]), st.booleans())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from("xyz"), inner, max_size=3),
    ),
    max_leaves=10,
)
documents = st.dictionaries(st.sampled_from("abcd"), values, max_size=4)


@given(documents, documents)
def test_applying_the_patch_to_the_old_document_gives_the_new_one(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    assert apply_merge_patch(old, merge_patch(old, new)) == new


@given(documents)
def test_nothing_to_write_when_nothing_changed(document: dict[str, Any]) -> None:
    assert merge_patch(document, document) == {}


def test_a_cleared_nested_field_is_sent_as_null() -> None:
    old = {"scheduler": {"consecutiveStartFailures": 2, "lastStartFailureAt": "t"}, "n": 1}
    new = {"scheduler": {"consecutiveStartFailures": 0}, "n": 1}
    assert merge_patch(old, new) == {
        "scheduler": {"consecutiveStartFailures": 0, "lastStartFailureAt": None}
    }


def test_none_in_the_new_document_means_absent() -> None:
    assert merge_patch({"a": 1}, {"a": None, "b": None}) == {"a": None}
