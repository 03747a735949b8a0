"""Task definition revisions: registration, resolution, deactivation, garbage collection."""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecs_operator.core import labels
from ecs_operator.core.revisions import (
    ResolvedRevision,
    RevisionRecord,
    controller_revision_manifest,
    current_revision,
    family_selector,
    is_new_reference,
    names_revision,
    needs_new_revision,
    next_revision_number,
    rejection,
    resolve_reference,
    revision_record_from_object,
    revisions_to_collect,
    revisions_to_deactivate,
    status_patch,
)
from ecs_operator.models.common import Condition

SPEC = {"containerDefinitions": [{"name": "app", "image": "nginx", "memory": 64}]}


def record(
    revision: int, uid: str = "uid-1", status: str = "ACTIVE", generation: int | None = None
) -> RevisionRecord:
    manifest = controller_revision_manifest(
        "web", "prod", uid, generation or revision, revision, SPEC
    )
    manifest["metadata"]["labels"][labels.REVISION_STATUS_LABEL] = status
    return revision_record_from_object(manifest)


def test_controller_revision_manifest() -> None:
    manifest = controller_revision_manifest("web", "prod", "uid-1", 4, 7, SPEC)
    assert manifest == {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": "web-7",
            "namespace": "prod",
            "labels": {
                "ecs.operator.dev/family": "web",
                "ecs.operator.dev/revision": "7",
                "ecs.operator.dev/revision-status": "ACTIVE",
                "app.kubernetes.io/managed-by": "ecs-operator",
            },
            "annotations": {
                "ecs.operator.dev/task-definition": "web:7",
                "ecs.operator.dev/source-uid": "uid-1",
                "ecs.operator.dev/source-generation": "4",
            },
        },
        "data": SPEC,
        "revision": 7,
    }
    assert "ownerReferences" not in manifest["metadata"]  # revisions outlive the TaskDefinition
    assert kubernetes_validate.validate(manifest, "1.32.0", strict=True)
    assert family_selector("web") == (
        "ecs.operator.dev/family=web,app.kubernetes.io/managed-by=ecs-operator"
    )
    assert status_patch("INACTIVE") == {
        "metadata": {"labels": {"ecs.operator.dev/revision-status": "INACTIVE"}}
    }


def test_record_round_trip() -> None:
    parsed = revision_record_from_object(
        controller_revision_manifest("web_v2", "prod", "uid-1", 4, 7, SPEC)
    )
    assert parsed == RevisionRecord(
        family="web_v2",
        revision=7,
        status="ACTIVE",
        source_uid="uid-1",
        source_generation=4,
        spec=SPEC,
    )
    assert parsed.reference == "web_v2:7"


def _broken(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    manifest = controller_revision_manifest("web", "prod", "uid-1", 4, 7, SPEC)
    target = manifest
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return manifest


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (_broken(("revision",), 8), "ecs.operator.dev/task-definition] must be FAMILY:REVISION"),
        (
            _broken(("metadata", "annotations", labels.TASK_DEFINITION_ANNOTATION), None),
            "must be FAMILY:REVISION",
        ),
        (
            _broken(("metadata", "labels", labels.REVISION_STATUS_LABEL), "GONE"),
            "must be ACTIVE or INACTIVE; got 'GONE'",
        ),
        (
            _broken(("metadata", "annotations", labels.SOURCE_UID_ANNOTATION), None),
            "source-uid] is missing",
        ),
        (
            _broken(("metadata", "annotations", labels.SOURCE_GENERATION_ANNOTATION), "x"),
            "must be a generation number; got 'x'",
        ),
        (_broken(("data",), None), "data must be the task definition spec"),
    ],
)
def test_malformed_controller_revisions_are_explained(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="ControllerRevision web-7: ") as caught:
        revision_record_from_object(obj)
    assert message in str(caught.value)


def test_a_revision_per_object_and_generation() -> None:
    revisions = [record(1, generation=1), record(2, generation=3)]
    assert not needs_new_revision("uid-1", 3, revisions)
    assert needs_new_revision("uid-1", 4, revisions)
    assert needs_new_revision("uid-2", 3, revisions)  # deleted and recreated: a new revision
    assert next_revision_number([]) == 1
    assert next_revision_number(revisions) == 3
    # Numbers whose name another object holds are skipped, never reused below the newest.
    assert next_revision_number(revisions, taken={1, 3, 4}) == 5
    assert current_revision("uid-1", revisions) == revisions[1]
    assert current_revision("uid-2", revisions) is None


def test_family_means_the_latest_active_revision() -> None:
    revisions = [record(1), record(3), record(2)]
    resolution = resolve_reference("web", revisions, "uid-1", for_new_task=True)
    assert resolution.error is None and resolution.record == revisions[1]
    arn = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:2"
    assert resolve_reference(arn, revisions, "uid-1", for_new_task=True).record == revisions[2]


def test_pinned_revisions() -> None:
    revisions = [record(1, status="INACTIVE", uid="old"), record(2), record(3)]
    pinned = resolve_reference("web:1", revisions, "uid-1", for_new_task=False)
    assert pinned.record == revisions[0]
    refused = resolve_reference("web:1", revisions, "uid-1", for_new_task=True)
    assert refused.record is None
    assert refused.error == (
        'task definition revision "web:1" is INACTIVE and cannot be used to start new tasks'
    )
    missing = resolve_reference("web:7", revisions, "uid-1", for_new_task=False)
    assert missing.error == 'task definition revision "web:7" does not exist (latest is web:3)'


def test_deleted_families() -> None:
    revisions = [record(1), record(2)]  # still labelled ACTIVE: the operator has not caught up
    gone = resolve_reference("web", revisions, None, for_new_task=True)
    assert gone.error == (
        'task definition "web" has no ACTIVE revision (the TaskDefinition was deleted)'
    )
    assert resolve_reference("web:2", revisions, None, for_new_task=False).record == revisions[1]
    assert resolve_reference("web:2", revisions, None, for_new_task=True).error is not None
    pending = resolve_reference("web", revisions, "uid-2", for_new_task=True)
    assert (
        pending.error
        == 'task definition "web" has no ACTIVE revision yet (not registered yet, or refused: '
        "see the TaskDefinition's Accepted condition)"
    )
    never = resolve_reference("api", revisions, None, for_new_task=True)
    assert never.error == 'task definition "api" does not exist'


def test_a_service_task_is_an_existing_user_of_its_revision() -> None:
    revisions = [record(1, status="INACTIVE")]
    service_task = is_new_reference(None, launched_by_service=True)
    assert resolve_reference("web:1", revisions, None, for_new_task=service_task).record
    assert is_new_reference(None, launched_by_service=False)
    assert not is_new_reference("web:1", launched_by_service=False)


@pytest.mark.parametrize(
    ("ref", "running", "named"),
    [
        ("web", "web:3", True),
        ("web:3", "web:3", True),
        ("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:3", "web:3", True),
        ("web:2", "web:3", False),
        ("api", "web:3", False),
        ("we b", "web:3", False),
    ],
)
def test_names_revision(ref: str, running: str, named: bool) -> None:
    assert names_revision(ref, running) is named


@pytest.mark.parametrize("ref", ["", "web:0", "web:x", "we b", "web:1:2", "arn:aws:s3:::web"])
def test_malformed_references(ref: str) -> None:
    resolution = resolve_reference(ref, [record(1)], "uid-1", for_new_task=True)
    assert resolution.record is None
    assert resolution.error is not None and "is not family, family:revision" in resolution.error


def test_deactivation_follows_the_live_object() -> None:
    revisions = [record(1, uid="old"), record(2, uid="old", status="INACTIVE"), record(3)]
    assert revisions_to_deactivate(revisions, "uid-1") == [1]
    assert revisions_to_deactivate(revisions, None) == [1, 3]


def test_collection_keeps_the_newest_and_the_referenced() -> None:
    revisions = [record(n) for n in range(1, 16)]
    assert revisions_to_collect(revisions, set(), keep=10) == [1, 2, 3, 4, 5]
    assert revisions_to_collect(revisions, {2, 4, 14}, keep=10) == [1, 3, 5]
    assert revisions_to_collect(revisions, set(), keep=0) == list(range(1, 15))
    assert revisions_to_collect(revisions[:3], set()) == []


# ---------------------------------------------------------------------------------------------
# Properties over arbitrary histories

OPERATIONS = st.lists(
    st.one_of(
        st.just(("edit",)),
        st.just(("delete",)),
        st.just(("create",)),
        st.just(("restart",)),
        st.tuples(st.just("gc"), st.frozensets(st.integers(1, 40)), st.integers(0, 4)),
    ),
    max_size=60,
)


@given(OPERATIONS)
def test_numbers_are_never_reused_and_gc_spares_the_newest_and_the_referenced(
    operations: list[tuple[Any, ...]],
) -> None:
    stored: dict[int, RevisionRecord] = {}
    issued: list[int] = []
    live: tuple[str, int] | None = ("uid-0", 1)
    objects = 0

    def reconcile() -> None:
        revisions = list(stored.values())
        if live is not None and needs_new_revision(live[0], live[1], revisions):
            number = next_revision_number(revisions)
            assert number not in issued
            assert all(number > earlier for earlier in issued)
            issued.append(number)
            stored[number] = revision_record_from_object(
                controller_revision_manifest("web", "ns", live[0], live[1], number, SPEC)
            )
        for number in revisions_to_deactivate(list(stored.values()), live and live[0]):
            stored[number] = replace(stored[number], status="INACTIVE")

    for operation in operations:
        if operation[0] == "edit" and live is not None:
            live = (live[0], live[1] + 1)
        elif operation[0] == "delete":
            live = None
        elif operation[0] == "create" and live is None:
            objects += 1
            live = (f"uid-{objects}", 1)
        elif operation[0] == "gc":
            _, referenced, keep = operation
            collected = revisions_to_collect(list(stored.values()), set(referenced), keep)
            assert max(stored, default=0) not in collected
            assert not set(collected) & referenced
            assert len(stored) - len(collected) >= min(len(stored), max(keep, 1))
            for number in collected:
                del stored[number]
        # "restart": the operator only re-reads state; reconcile must then be a no-op.
        reconcile()
        before = dict(stored)
        reconcile()
        assert stored == before
        if live is not None:
            latest = resolve_reference("web", list(stored.values()), live[0], for_new_task=True)
            assert latest.record is not None
            assert latest.record == current_revision(live[0], list(stored.values()))
            assert latest.record.source_generation == live[1]
        else:
            assert all(record.status == "INACTIVE" for record in stored.values())


def test_a_refused_task_definition_says_so_instead_of_pending() -> None:
    """A Service (or Task) whose TaskDefinition was refused is told why, not that the
    registration is pending: ``reason`` prefers the refusal."""
    pending = resolve_reference("web", [], "uid-2", for_new_task=True)
    refused = Condition(
        type="Accepted",
        status="False",
        last_transition_time=datetime(2025, 1, 1, tzinfo=UTC),
        reason="Invalid",
        message="spec.cpu: too small",
    )
    resolved = ResolvedRevision(error=pending.error, rejection=rejection("web", refused))
    assert resolved.reason == 'task definition "web" is not accepted: spec.cpu: too small'
    assert ResolvedRevision(error=pending.error).reason == pending.error
    assert rejection("web", refused.model_copy(update={"status": "True"})) is None
