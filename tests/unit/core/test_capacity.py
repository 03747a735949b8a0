"""Capacity stand-ins (core.capacity): a live service task placed on a node whose Pod does not
exist yet counts against that node, once, in its task group."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ecs_operator.core import labels
from ecs_operator.core.capacity import cluster_instances, placed_node, stand_in_pods

NODES = ("n1", "n2")


def node(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "uid": name, "labels": {}},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def task(
    name: str, placed: str | None, desired: str = "RUNNING", last_status: str | None = None
) -> dict[str, Any]:
    annotations = {labels.PLACED_NODE_ANNOTATION: placed} if placed else {}
    return {
        "metadata": {"namespace": "ns", "name": name, "uid": name, "annotations": annotations},
        "spec": {"group": "service:web", "desiredStatus": "RUNNING"},
        "status": {"desiredStatus": desired, "lastStatus": last_status},
    }


tasks_strategy = st.lists(
    st.tuples(
        st.sampled_from((None, *NODES)),
        st.sampled_from(("RUNNING", "STOPPED")),
        st.sampled_from((None, "PENDING", "RUNNING", "STOPPED")),
        st.booleans(),  # its Pod exists
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(tasks_strategy)
def test_exactly_the_live_placed_podless_tasks_stand_in_on_their_node(
    drawn: list[tuple[str | None, str, str | None, bool]],
) -> None:
    tasks = [
        task(f"t{i}", placed, desired, last) for i, (placed, desired, last, _) in enumerate(drawn)
    ]
    with_pod = {f"t{i}" for i, (*_, has_pod) in enumerate(drawn) if has_pod}
    stand_ins = list(stand_in_pods(tasks, lambda t: t["metadata"]["name"] in with_pod))
    expected = [
        t
        for t, (placed, desired, last, has_pod) in zip(tasks, drawn, strict=True)
        if placed and not has_pod and "STOPPED" not in (desired, last)
    ]
    assert [p["metadata"]["name"] for p in stand_ins] == [t["metadata"]["name"] for t in expected]
    for pod, original in zip(stand_ins, expected, strict=True):
        assert pod["spec"]["nodeName"] == placed_node(original)
        assert pod["metadata"]["annotations"] == {labels.GROUP_ANNOTATION: "service:web"}
    counted = cluster_instances([node(n) for n in NODES], stand_ins)
    for instance in counted:
        on_node = sum(p["spec"]["nodeName"] == instance.name for p in stand_ins)
        assert instance.group_counts.get("service:web", 0) == on_node


def test_a_task_asked_to_stop_in_its_spec_stands_in_for_nothing() -> None:
    stopping = task("t1", "n1")
    stopping["spec"]["desiredStatus"] = "STOPPED"
    assert list(stand_in_pods([stopping], lambda _: False)) == []
