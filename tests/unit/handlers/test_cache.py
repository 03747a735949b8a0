"""The watch cache: latest version wins, deleted objects leave a tombstone."""

from typing import Any

from ecs_operator.handlers.cache import ObjectCache


def pod(name: str, rv: int, uid: str = "u1", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "uid": uid, "resourceVersion": str(rv)},
        "status": status,
    }


def test_an_older_version_never_replaces_a_newer_one() -> None:
    cache = ObjectCache()
    cache.observe("MODIFIED", pod("p", 10, phase="Running"))  # our own write's response
    cache.observe("MODIFIED", pod("p", 9, phase="Pending"))  # the watch catching up late
    assert cache.get(("ns", "p")) == pod("p", 10, phase="Running")


def test_a_recreated_object_replaces_the_old_one_whatever_its_version() -> None:
    cache = ObjectCache()
    cache.observe("ADDED", pod("p", 10, uid="old"))
    cache.observe("ADDED", pod("p", 3, uid="new"))
    assert cache.get(("ns", "p"))["metadata"]["uid"] == "new"


def test_a_deleted_object_leaves_its_last_state_until_recreated() -> None:
    cache = ObjectCache()
    cache.observe("ADDED", pod("p", 1))
    final = pod("p", 2, phase="Failed", containerStatuses=[{"name": "c", "exitCode": 143}])
    cache.observe("DELETED", final)
    assert cache.get(("ns", "p")) is None
    assert cache.tombstone(("ns", "p")) == final
    assert list(cache.in_namespace("ns")) == []
    cache.observe("ADDED", pod("p", 3, uid="u2"))
    assert cache.tombstone(("ns", "p")) is None


def test_tombstones_are_bounded() -> None:
    cache = ObjectCache(tombstones=2)
    for name in ("a", "b", "c"):
        cache.observe("DELETED", pod(name, 1))
    assert cache.tombstone(("ns", "a")) is None
    assert cache.tombstone(("ns", "c")) is not None
