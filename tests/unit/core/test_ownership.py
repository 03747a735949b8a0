"""Ownership before action: a child is the owner's only by an ownerReference with its uid."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ecs_operator.core import labels
from ecs_operator.core.ownership import (
    managed_by_operator,
    owned_by,
    owner_description,
    owner_name,
    service_of_task,
)

SERVICE = {"metadata": {"name": "web", "uid": "uid-web"}}


def child(*references: dict[str, Any], **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": "c", "labels": labels, "ownerReferences": list(references)}}


def reference(kind: str = "Service", name: str = "web", uid: str = "uid-web") -> dict[str, Any]:
    return {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": kind, "name": name, "uid": uid}


def test_an_owner_reference_with_the_owners_uid_makes_a_child() -> None:
    assert owned_by(child(reference()), SERVICE)
    assert owned_by(child(reference(kind="ConfigMap", name="x"), reference()), SERVICE)


def test_a_name_kind_or_labels_alone_prove_nothing() -> None:
    forged = child(reference(uid="uid-of-something-else"), **{"ecs.operator.dev/service": "web"})
    assert not owned_by(forged, SERVICE)
    assert not owned_by(child(), SERVICE)
    assert not owned_by({"metadata": {}}, SERVICE)


def test_an_owner_without_a_uid_owns_nothing() -> None:
    assert not owned_by(child(reference(uid="")), {"metadata": {"name": "web", "uid": ""}})
    assert not owned_by(child({"kind": "Service", "name": "web"}), {"metadata": {"name": "web"}})


def test_malformed_references_are_no_owner() -> None:
    broken: dict[str, Any] = {"metadata": {"ownerReferences": ["uid-web", None, 7]}}
    assert not owned_by(broken, SERVICE)
    assert owner_description(broken) == "it has no owner"


@given(st.text(min_size=1), st.text(min_size=1))
def test_ownership_is_exactly_uid_equality(owner_uid: str, reference_uid: str) -> None:
    owner = {"metadata": {"uid": owner_uid}}
    assert owned_by(child(reference(uid=reference_uid)), owner) == (owner_uid == reference_uid)


def test_the_managed_by_label_and_who_owns_a_foreign_object() -> None:
    assert managed_by_operator(child(**{"app.kubernetes.io/managed-by": "ecs-operator"}))
    assert not managed_by_operator(child(**{"app.kubernetes.io/managed-by": "helm"}))
    assert not managed_by_operator({"metadata": {}})
    assert owner_description(child()) == "it has no owner"
    controller = reference(kind="Deployment", name="db") | {"controller": True}
    assert owner_description(child(reference(), controller)) == "it belongs to Deployment/db"
    assert owner_description(child(reference())) == "it belongs to Service/web"


def test_the_owner_of_a_kind_and_the_service_a_task_counts_for() -> None:
    task = child(reference(kind="Task", name="first"), reference())
    assert (owner_name(task, "Service"), owner_name(task, "Task")) == ("web", "first")
    assert owner_name(child(), "Service") is None
    assert service_of_task(task) == "web"
    # A lifecycle hook's Task: its Service owns it (to delete it) but it is standalone.
    assert service_of_task(child(reference(), **{labels.HOOK_LABEL: "hook-1"})) is None
