"""Service task names derived from the launch, the names and Tasks of a run (RunTask's count),
and the verdict on a name already taken."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ecs_operator.core import labels
from ecs_operator.core.launches import (
    LAUNCH_ORDINAL_ANNOTATION,
    MAX_NAME_LENGTH,
    Existing,
    existing_verdict,
    is_controlled_by,
    launch_names,
    run_task_manifest,
    run_task_names,
    service_task_name,
)

# A Kubernetes object name (DNS-1123 subdomain), as the API validates a Task's and a Pod's.
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
SERVICE_NAMES = st.from_regex(SUBDOMAIN, fullmatch=True).filter(lambda n: len(n) <= 253)
UIDS = st.uuids().map(str)
DEPLOYMENTS = st.integers(0, 10**19 - 1).map(lambda n: f"ecs-svc/{n:019d}")


@given(SERVICE_NAMES, UIDS, DEPLOYMENTS, st.integers(0, 10**6), st.integers(0, 10**6))
def test_distinct_ordinals_give_distinct_valid_names(
    service: str, uid: str, deployment: str, first: int, second: int
) -> None:
    a = service_task_name(service, uid, deployment, first)
    b = service_task_name(service, uid, deployment, second)
    assert (a == b) == (first == second)
    for name in (a, b):
        assert len(name) <= MAX_NAME_LENGTH
        assert SUBDOMAIN.fullmatch(name), name
        # The Pod's task label stays a valid label value however long the name.
        assert len(labels.label_value(name)) <= labels.MAX_LABEL_VALUE_LENGTH


@given(SERVICE_NAMES, UIDS, DEPLOYMENTS, st.integers(0, 1000))
def test_a_name_is_stable_across_restarts_and_keeps_a_short_service_name_whole(
    service: str, uid: str, deployment: str, ordinal: int
) -> None:
    # A pure function of its inputs: a restarted operator (or a retry) derives the same name.
    name = service_task_name(service, uid, deployment, ordinal)
    assert name == service_task_name(service, uid, deployment, ordinal)
    if len(service) <= MAX_NAME_LENGTH - 11:
        assert name.startswith(f"{service}-")


@given(UIDS, DEPLOYMENTS, DEPLOYMENTS)
def test_other_deployments_and_services_get_other_names(
    uid: str, deployment: str, other: str
) -> None:
    if deployment != other:
        assert service_task_name("web", uid, deployment, 0) != service_task_name(
            "web", uid, other, 0
        )
    # A Service deleted and created again under the same name (a new uid) names anew.
    assert service_task_name("web", uid, deployment, 0) != service_task_name(
        "web", uid + "x", deployment, 0
    )


@given(st.sets(st.integers(0, 30), max_size=20), st.integers(0, 10))
def test_launch_names_take_the_lowest_free_ordinals(held: set[int], count: int) -> None:
    taken = {service_task_name("web", "u", "ecs-svc/1", o) for o in held}
    chosen = launch_names("web", "u", "ecs-svc/1", count, taken.__contains__)
    ordinals = [o for o, _ in chosen]
    assert ordinals == sorted(o for o in range(count + len(held)) if o not in held)[:count]
    assert all(name == service_task_name("web", "u", "ecs-svc/1", o) for o, name in chosen)


def test_a_retry_before_the_watch_shows_the_first_attempt_names_the_same_tasks() -> None:
    cache = {service_task_name("web", "u", "ecs-svc/1", o) for o in (0, 1, 3)}
    # Ordinal 2's create committed but its response was lost; the cache has 0, 1 and 3.
    first = launch_names("web", "u", "ecs-svc/1", 2, cache.__contains__)
    again = launch_names("web", "u", "ecs-svc/1", 2, cache.__contains__)
    assert first == again
    assert [o for o, _ in first] == [2, 4]


def _task(
    owner_uid: str, *, controller: bool = True, managed: bool = True, **launch: str
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": "web-0123456789",
        "ownerReferences": [{"kind": "Service", "uid": owner_uid, "controller": controller}],
        "labels": {labels.MANAGED_BY_LABEL: labels.MANAGED_BY} if managed else {},
        "annotations": {LAUNCH_ORDINAL_ANNOTATION: launch.get("ordinal", "2")},
    }
    return {"metadata": metadata, "spec": {"startedBy": launch.get("deployment", "ecs-svc/1")}}


def test_a_taken_name_is_ours_only_when_controlled_managed_and_the_same_launch() -> None:
    intended = _task("svc-uid")
    assert existing_verdict(_task("svc-uid"), intended) is Existing.SAME_LAUNCH
    assert existing_verdict(_task("svc-uid", ordinal="3"), intended) is Existing.OTHER_LAUNCH
    assert (
        existing_verdict(_task("svc-uid", deployment="ecs-svc/2"), intended)
        is Existing.OTHER_LAUNCH
    )
    # Forged: the right labels and annotations but another owner, or not as controller.
    assert existing_verdict(_task("someone-else"), intended) is Existing.FOREIGN
    assert existing_verdict(_task("svc-uid", controller=False), intended) is Existing.FOREIGN
    assert existing_verdict(_task("svc-uid", managed=False), intended) is Existing.FOREIGN
    assert existing_verdict({"metadata": {"name": "x"}}, intended) is Existing.FOREIGN


def test_is_controlled_by_needs_the_controller_reference_with_that_uid() -> None:
    assert is_controlled_by(_task("a"), "a")
    assert not is_controlled_by(_task("a"), "b")
    assert not is_controlled_by(_task("a", controller=False), "a")
    assert not is_controlled_by({"metadata": {}}, "a")


def test_a_service_name_too_long_to_keep_whole_is_cut_to_a_valid_name() -> None:
    for service in ("a" * 253, "a" * 241 + ".b" + "c" * 10, "a" * 240 + "-.b" + "c" * 10):
        names = {service_task_name(service, "u", "ecs-svc/1", o) for o in range(50)}
        assert len(names) == 50
        assert all(len(n) <= MAX_NAME_LENGTH and SUBDOMAIN.fullmatch(n) for n in names), names


# ---------------------------------------------------------------------------------------------
# The tasks of a run


def test_a_run_s_tasks_are_named_after_its_first() -> None:
    assert run_task_names("nightly", 3) == [(2, "nightly-2"), (3, "nightly-3")]
    assert run_task_names("nightly", 1) == []


@given(SERVICE_NAMES, SERVICE_NAMES, st.integers(2, 10))
def test_run_names_are_valid_distinct_and_never_another_run_s(
    first: str, other: str, count: int
) -> None:
    """However long the first Task's name (253 at most), its run's names are valid object
    names; one run's names are distinct, and two first Tasks never share one."""
    names = [name for _, name in run_task_names(first, count)]
    assert [ordinal for ordinal, _ in run_task_names(first, count)] == list(range(2, count + 1))
    assert len(set(names)) == len(names) == count - 1
    for name in names:
        assert len(name) <= MAX_NAME_LENGTH
        assert SUBDOMAIN.fullmatch(name), name
    if other != first:
        assert not set(names) & {name for _, name in run_task_names(other, count)}


def test_a_cut_first_name_keeps_a_digest_of_it() -> None:
    longest = "a" * 252 + "b"
    [(_, name)] = run_task_names(longest, 2)
    assert len(name) == MAX_NAME_LENGTH and name.endswith("-2")
    assert name != run_task_names("a" * 252 + "c", 2)[0][1]


def first_task() -> dict[str, Any]:
    return {
        "metadata": {"name": "nightly", "namespace": "batch", "uid": "first-uid"},
        "spec": {
            "taskDefinition": "report",
            "count": 3,
            "startedBy": "cron",
            "tags": [{"key": "a"}],
        },
    }


def test_a_run_task_is_its_first_s_spec_on_the_resolved_revision_owned_by_it() -> None:
    manifest = run_task_manifest(first_task(), 2, "nightly-2", "report:4")
    assert manifest["spec"] == {
        "taskDefinition": "report:4",
        "startedBy": "cron",
        "tags": [{"key": "a"}],
    }
    metadata = manifest["metadata"]
    assert metadata["labels"][labels.RUN_LABEL] == "nightly"
    assert metadata["annotations"] == {LAUNCH_ORDINAL_ANNOTATION: "2"}
    assert is_controlled_by(manifest, "first-uid")
    assert existing_verdict(manifest, manifest) is Existing.SAME_LAUNCH
    other_ordinal = run_task_manifest(first_task(), 3, "nightly-2", "report:4")
    assert existing_verdict(other_ordinal, manifest) is Existing.OTHER_LAUNCH
    copied = run_task_manifest(first_task(), 2, "nightly-2", "report:4")
    copied["metadata"]["ownerReferences"][0]["uid"] = "another-uid"
    assert existing_verdict(copied, manifest) is Existing.FOREIGN
