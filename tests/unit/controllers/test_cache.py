"""The watch cache: latest version wins, deleted objects leave a tombstone, objects are found
by their index value, each version is validated once."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from ecs_operator.controllers.cache import ObjectCache, finalizer_write_event
from ecs_operator.core.capacity import planned_node


def pod(name: str, rv: int, uid: str = "u1", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "uid": uid, "resourceVersion": str(rv)},
        "status": status,
    }


def test_an_older_version_never_replaces_a_newer_one() -> None:
    cache = ObjectCache()
    cache.record("MODIFIED", pod("p", 10, phase="Running"))  # our own write's response
    cache.record("MODIFIED", pod("p", 9, phase="Pending"))  # the watch catching up late
    assert cache.get(("ns", "p")) == pod("p", 10, phase="Running")


def test_holds_tells_the_echo_of_our_own_write() -> None:
    cache = ObjectCache()
    assert not cache.holds(pod("p", 10))
    cache.record("MODIFIED", pod("p", 10))  # our own write's response
    assert cache.holds(pod("p", 10))  # its watch event
    assert cache.holds(pod("p", 9))  # an earlier event, arriving late
    assert not cache.holds(pod("p", 11))  # someone else's change
    assert not cache.holds(pod("p", 3, uid="new"))  # recreated


def test_a_recreated_object_replaces_the_old_one_whatever_its_version() -> None:
    cache = ObjectCache()
    cache.record("ADDED", pod("p", 10, uid="old"))
    cache.record("ADDED", pod("p", 3, uid="new"))
    assert cache.get(("ns", "p"))["metadata"]["uid"] == "new"


def test_a_deleted_object_leaves_its_last_state_until_recreated() -> None:
    cache = ObjectCache()
    cache.record("ADDED", pod("p", 1))
    final = pod("p", 2, phase="Failed", containerStatuses=[{"name": "c", "exitCode": 143}])
    cache.record("DELETED", final)
    assert cache.get(("ns", "p")) is None
    assert cache.tombstone(("ns", "p")) == final
    assert list(cache.in_namespace("ns")) == []
    cache.record("ADDED", pod("p", 3, uid="u2"))
    assert cache.tombstone(("ns", "p")) is None


def test_tombstones_are_bounded() -> None:
    cache = ObjectCache(tombstones=2)
    for name in ("a", "b", "c"):
        cache.record("DELETED", pod(name, 1))
    assert cache.tombstone(("ns", "a")) is None
    assert cache.tombstone(("ns", "c")) is not None


def on_node(name: str, rv: int, node: str | None, pinned: str | None = None) -> dict[str, Any]:
    body = pod(name, rv, uid=name)
    body["spec"] = {"nodeName": node} if node else {}
    if pinned:
        term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "values": [pinned]}]}
        affinity = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
        body["spec"]["affinity"] = {"nodeAffinity": affinity}
    return body


def names(bodies: Any) -> set[str]:
    return {body["metadata"]["name"] for body in bodies}


def test_the_node_index_follows_binding_moves_and_deletion() -> None:
    cache = ObjectCache(indexes={"node": planned_node})
    cache.record("ADDED", on_node("a", 1, None, pinned="n1"))  # created, not yet bound
    cache.record("ADDED", on_node("b", 2, "n2"))
    cache.record("ADDED", on_node("c", 3, None))  # no node at all: filed nowhere
    assert names(cache.indexed("node", "n1")) == {"a"}
    cache.record("MODIFIED", on_node("a", 4, "n3"))  # bound elsewhere than it was pinned
    assert names(cache.indexed("node", "n1")) == set()
    assert names(cache.indexed("node", "n3")) == {"a"}
    cache.record("MODIFIED", on_node("a", 3, "n1"))  # a stale event changes nothing
    assert names(cache.indexed("node", "n3")) == {"a"}
    seen = cache.index_version("node", "n2")
    cache.record("DELETED", on_node("b", 5, "n2"))
    assert names(cache.indexed("node", "n2")) == set()
    assert cache.index_version("node", "n2") != seen


def test_a_change_within_an_index_value_moves_its_version() -> None:
    cache = ObjectCache(indexes={"node": planned_node})
    cache.record("ADDED", on_node("a", 1, "n1"))
    seen = cache.index_version("node", "n1")
    cache.record("MODIFIED", {**on_node("a", 2, "n1"), "status": {"phase": "Failed"}})
    assert cache.index_version("node", "n1") != seen
    untouched = cache.index_version("node", "n2")
    cache.record("MODIFIED", on_node("a", 3, "n1"))
    assert cache.index_version("node", "n2") == untouched


class Phase(BaseModel):
    status: dict[str, str]


def test_each_version_is_validated_once() -> None:
    cache = ObjectCache()
    cache.record("ADDED", pod("p", 1, phase="Pending"))
    body = cache.get(("ns", "p"))
    first = cache.parsed(body, Phase)
    assert cache.parsed(body, Phase) is first
    cache.record("MODIFIED", pod("p", 2, phase="Running"))
    second = cache.parsed(cache.get(("ns", "p")), Phase)
    assert second.status == {"phase": "Running"}
    assert second is not first


def test_an_invalid_version_raises_every_time() -> None:
    cache = ObjectCache()
    cache.record("ADDED", pod("p", 1, phase="Pending"))
    body = cache.get(("ns", "p"))
    body["status"] = "not an object"
    for _ in range(2):
        with pytest.raises(ValidationError):
            cache.parsed(body, Phase)


def test_validated_models_are_remembered_for_the_most_recently_read_only() -> None:
    cache = ObjectCache(parsed=2)
    for name in ("a", "b", "c"):
        cache.record("ADDED", pod(name, 1, uid=name, phase="Running"))
    a, b = (cache.parsed(cache.get(("ns", n)), Phase) for n in ("a", "b"))
    assert cache.parsed(cache.get(("ns", "a")), Phase) is a  # "a" is now the most recent
    cache.parsed(cache.get(("ns", "c")), Phase)  # evicts "b", the least recently read
    assert cache.parsed(cache.get(("ns", "a")), Phase) is a
    assert cache.parsed(cache.get(("ns", "b")), Phase) is not b


def test_managed_fields_are_not_kept() -> None:
    cache = ObjectCache()
    body = pod("p", 1)
    body["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    cache.record("ADDED", body)
    assert "managedFields" not in cache.get(("ns", "p"))["metadata"]
    assert "managedFields" in body["metadata"]  # the event's own body is left alone
    cache.record("DELETED", body)
    assert "managedFields" not in cache.tombstone(("ns", "p"))["metadata"]


def test_the_version_already_held_changes_nothing() -> None:
    """Our write's response is held first; the watch event of that write comes later."""
    cache = ObjectCache(indexes={"node": planned_node})
    cache.record("MODIFIED", on_node("a", 7, "n1"))
    held = cache.get(("ns", "a"))
    model = cache.parsed(held, Phase)
    seen = cache.index_version("node", "n1")
    cache.record("MODIFIED", on_node("a", 7, "n1"))
    assert cache.get(("ns", "a")) is held
    assert cache.parsed(cache.get(("ns", "a")), Phase) is model
    assert cache.index_version("node", "n1") == seen


def test_a_relist_tombstones_what_it_no_longer_has() -> None:
    cache = ObjectCache()
    for name, rv in (("kept", 1), ("gone", 2)):
        cache.record("ADDED", pod(name, rv, uid=name))
    gone = cache.replace([pod("kept", 1, uid="kept")], "5")
    assert gone == [pod("gone", 2, uid="gone")]
    assert cache.get(("ns", "gone")) is None
    assert cache.tombstone(("ns", "gone")) == pod("gone", 2, uid="gone")
    assert [body["metadata"]["name"] for body in cache.values()] == ["kept"]


def test_a_relist_keeps_what_was_written_after_it_and_adds_what_it_found() -> None:
    cache = ObjectCache()
    cache.record("ADDED", pod("created-since", 7, uid="a"))  # our create, answered after the list
    assert cache.replace([pod("found", 4, uid="b")], "5") == []
    assert cache.get(("ns", "created-since")) is not None
    assert cache.get(("ns", "found")) == pod("found", 4, uid="b")


def test_a_relist_of_one_namespace_leaves_the_others_alone() -> None:
    cache = ObjectCache()
    other = {"metadata": {"namespace": "other", "name": "p", "uid": "o", "resourceVersion": "1"}}
    cache.record("ADDED", other)
    cache.record("ADDED", pod("p", 1))
    assert cache.replace([], "5", namespace="ns") == [pod("p", 1)]
    assert cache.get(("other", "p")) == other


def test_an_event_older_than_a_deletion_never_brings_the_object_back() -> None:
    cache = ObjectCache()
    cache.record("ADDED", pod("p", 1))
    cache.replace([], "5")
    cache.record("MODIFIED", pod("p", 4))  # queued before the relist, handled after it
    cache.record(None, pod("p", 5))  # listed by a relist that ran before the deletion
    assert cache.get(("ns", "p")) is None
    cache.record("DELETED", pod("q", 9, uid="q"))
    cache.record("MODIFIED", pod("q", 8, uid="q"))  # a write's response, answered late
    assert cache.get(("ns", "q")) is None
    cache.record("ADDED", pod("p", 6, uid="new"))  # re-created: a new object
    assert cache.get(("ns", "p")) == pod("p", 6, uid="new")


def test_the_deletion_of_an_object_replaced_since_changes_nothing() -> None:
    cache = ObjectCache()
    cache.record("ADDED", pod("p", 7, uid="new"))  # our create, answered first
    cache.record("DELETED", pod("p", 6, uid="old"))  # the old object's deletion, seen after
    assert cache.get(("ns", "p")) == pod("p", 7, uid="new")


# One step of an object's history: (name, action), action "put" (create or update) or "delete".
steps = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["put", "delete"])),
    min_size=2,
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(steps, st.lists(st.booleans(), min_size=30, max_size=30), st.integers(0, 30))
def test_after_a_relist_the_cache_holds_what_the_list_held_and_nothing_deleted(
    history: list[tuple[str, str]], seen: list[bool], cut: int
) -> None:
    """Whatever events the watch missed, after `replace` with a list taken at version L the
    cache holds exactly the listed objects, less those it saw deleted after L, plus those it
    saw written after L."""
    cache = ObjectCache()
    truth: dict[str, dict[str, Any]] = {}
    listed: dict[str, dict[str, Any]] | None = None
    list_version = 0
    uids = 0
    deleted_after_list: set[str] = set()  # uids
    for version, ((name, action), observed) in enumerate(zip(history, seen, strict=False), 1):
        if version == cut + 1:
            listed, list_version = dict(truth), version - 1
        if action == "put":
            uid = truth[name]["metadata"]["uid"] if name in truth else f"{name}{(uids := uids + 1)}"
            truth[name] = pod(name, version, uid=uid)
            if observed:
                cache.record("MODIFIED", truth[name])
        elif name in truth:
            gone = truth.pop(name)
            if observed:
                cache.record("DELETED", pod(name, version, uid=gone["metadata"]["uid"]))
                if listed is not None:
                    deleted_after_list.add(gone["metadata"]["uid"])
    if listed is None:
        listed, list_version = dict(truth), len(history)
    held_after_list = {
        body["metadata"]["name"]
        for body in cache.values()
        if int(body["metadata"]["resourceVersion"]) > list_version
    }
    cache.replace(listed.values(), str(list_version))
    names = {body["metadata"]["name"] for body in cache.values()}
    still = {n for n, body in listed.items() if body["metadata"]["uid"] not in deleted_after_list}
    assert names == still | held_after_list
    for body in cache.values():
        name = body["metadata"]["name"]
        if name not in held_after_list:
            assert int(body["metadata"]["resourceVersion"]) >= int(
                listed[name]["metadata"]["resourceVersion"]
            )


def test_a_relist_replaces_an_object_recreated_under_its_name_unless_seen_deleted() -> None:
    cache = ObjectCache()
    cache.record("ADDED", pod("p", 1, uid="old"))
    # "old" deleted (missed), "new" created under its name: the list has "new".
    assert cache.replace([pod("p", 3, uid="new")], "3") == [pod("p", 1, uid="old")]
    assert cache.get(("ns", "p")) == pod("p", 3, uid="new")
    # "new" seen deleted while "old" was still held: the list that still has it changes nothing.
    cache = ObjectCache()
    cache.record("ADDED", pod("p", 1, uid="old"))
    cache.record("DELETED", pod("p", 4, uid="new"))
    assert cache.get(("ns", "p")) == pod("p", 1, uid="old")
    cache.replace([pod("p", 3, uid="new")], "3")
    assert cache.get(("ns", "p")) is None


def test_a_late_write_response_never_brings_a_deleted_object_back() -> None:
    cache = ObjectCache()
    cache.record("ADDED", pod("p", 1))
    cache.record("DELETED", pod("p", 3))  # the watch reports the deletion first
    cache.record("MODIFIED", pod("p", 3))  # then the response of the write that deleted it
    cache.record("MODIFIED", pod("p", 2))  # or of an earlier write
    assert cache.get(("ns", "p")) is None
    cache.record("ADDED", pod("p", 4, uid="u2"))  # re-created: a new object
    assert cache.get(("ns", "p")) == pod("p", 4, uid="u2")


def test_a_finalizer_write_that_frees_a_deleted_object_stands_for_its_deletion() -> None:
    deleting = {"metadata": {"name": "lb", "deletionTimestamp": "2025-01-01T00:00:00Z"}}
    assert finalizer_write_event(deleting) == "DELETED"
    held = {"metadata": {**deleting["metadata"], "finalizers": ["other"]}}
    assert finalizer_write_event(held) == "MODIFIED"
    assert finalizer_write_event({"metadata": {"name": "lb", "finalizers": []}}) == "MODIFIED"
