"""`RevisionReader`: one reader of stored revisions, each spec validated once per version of its
ControllerRevision (a revision re-created under the same name is read anew)."""

from typing import Any

from ecs_operator.controllers.cache import ObjectCache
from ecs_operator.controllers.revisions import RevisionReader
from ecs_operator.core import events
from ecs_operator.core.revisions import controller_revision_manifest


def stored(revision: int, image: str, version: int, uid: str = "td-uid") -> dict[str, Any]:
    data = {"containerDefinitions": [{"name": "app", "image": image, "memory": 64}]}
    manifest = controller_revision_manifest("web", "prod", uid, revision, revision, data)
    manifest["metadata"] |= {"uid": f"cr-{revision}-{version}", "resourceVersion": str(version)}
    return manifest


def task_definition(accepted: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "web", "namespace": "prod", "uid": "td-uid"}}
    if accepted is not None:
        body["status"] = {"conditions": [accepted]}
    return body


def reader(*objects: dict[str, Any], live: dict[str, Any] | None = None) -> RevisionReader:
    revisions, task_definitions = ObjectCache(), ObjectCache()
    for obj in objects:
        revisions.record("ADDED", obj)
    if live is not None:
        task_definitions.record("ADDED", live)
    return RevisionReader(revisions, task_definitions)


def test_a_reference_resolves_to_its_revision_and_spec() -> None:
    found = reader(stored(1, "nginx:1", 10), stored(2, "nginx:2", 11), live=task_definition())
    latest = found.resolve("prod", "web", for_new_task=True).revision
    assert latest is not None
    assert (latest.record.reference, latest.spec.container_definitions[0].image) == (
        "web:2",
        "nginx:2",
    )
    pinned = found.resolve("prod", "web:1", for_new_task=True).revision
    assert pinned is not None and pinned.spec.container_definitions[0].image == "nginx:1"


def test_a_spec_is_validated_once_and_a_recreated_revision_is_read_anew() -> None:
    revisions = ObjectCache()
    revisions.record("ADDED", stored(1, "nginx:1", 10))
    found = RevisionReader(revisions, ObjectCache())
    first, again = found.spec("prod", "web:1"), found.spec("prod", "web:1")
    assert first is not None and first is again
    revisions.record("DELETED", stored(1, "nginx:1", 12))
    revisions.record("ADDED", stored(1, "nginx:other", 13))
    recreated = found.spec("prod", "web:1")
    assert recreated is not None and recreated.container_definitions[0].image == "nginx:other"


def test_the_spec_a_reference_names_is_the_pinned_or_newest_whatever_its_status() -> None:
    found = reader(stored(1, "nginx:1", 10), stored(2, "nginx:2", 11))  # family deleted
    newest, pinned = found.spec("prod", "web"), found.spec("prod", "web:1")
    assert newest is not None and newest.container_definitions[0].image == "nginx:2"
    assert pinned is not None and pinned.container_definitions[0].image == "nginx:1"
    assert found.spec("prod", "web:7") is None
    assert found.spec("prod", "not a reference!") is None


def test_an_unresolved_reference_says_why_and_whether_the_family_is_refused() -> None:
    assert reader().resolve("prod", "web", for_new_task=True).error == events.family_missing("web")
    refused = {"type": "Accepted", "status": "False", "reason": "Invalid", "message": "bad cpu"}
    refused |= {"lastTransitionTime": "2025-01-01T00:00:00Z"}
    resolved = reader(live=task_definition(refused)).resolve("prod", "web", for_new_task=True)
    assert resolved.error == events.family_pending("web")
    assert resolved.rejection == events.family_not_accepted("web", "bad cpu")
    assert reader().resolve("prod", "web", for_new_task=True).rejection is None
