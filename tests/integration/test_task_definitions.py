"""TaskDefinition families end to end: revisions, INACTIVE after delete, numbers never reused,
and the security policy (privileged refused unless the operator allows it)."""

from __future__ import annotations

from pathlib import Path

import yaml

from support.ecs_api import (
    FAMILY_LABEL,
    REVISION_STATUS_LABEL,
    Ecs,
    KubectlRunner,
    OperatorProcess,
    condition,
    container,
    task_definition,
)


def revision_states(ecs: Ecs, family: str) -> dict[str, str]:
    return {
        name: item["metadata"]["labels"][REVISION_STATUS_LABEL]
        for name, item in ecs.revisions(family).items()
    }


def test_revisions_register_deactivate_and_never_reuse_numbers(
    ecs: Ecs, kubectl: KubectlRunner, tmp_path: Path
) -> None:
    manifest = tmp_path / "web.yaml"
    body = task_definition("web", container("app", memoryReservation=32))
    manifest.write_text(yaml.safe_dump(body))
    applied = kubectl("apply", "-n", ecs.namespace, "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr

    status = ecs.wait_accepted("web")
    assert status["revision"] == 1
    assert status["taskDefinitionArn"] == "web:1"
    assert revision_states(ecs, "web") == {"web-1": "ACTIVE"}

    body["spec"]["containerDefinitions"][0]["environment"] = [{"name": "MODE", "value": "two"}]
    manifest.write_text(yaml.safe_dump(body))
    assert kubectl("apply", "-n", ecs.namespace, "-f", str(manifest)).returncode == 0
    ecs.wait(
        lambda: (ecs.task_definition("web") or {}).get("status", {}).get("revision") == 2,
        "revision 2 registered",
        lambda: ecs.task_definition("web"),
    )
    assert revision_states(ecs, "web") == {"web-1": "ACTIVE", "web-2": "ACTIVE"}

    generation = ecs.task_definition("web")["metadata"]["generation"]  # type: ignore[index]
    # kubectl sends a merge patch replacing the list (the server had defaulted `essential`);
    # after defaulting nothing changed, so the generation must stay and no revision is made.
    again = kubectl("apply", "-n", ecs.namespace, "-f", str(manifest))
    assert again.returncode == 0, again.stderr
    # A task resolving `web` proves the operator has caught up with the re-apply.
    ecs.create_task("runner", "web")
    running = ecs.wait_last_status("runner", "RUNNING")
    assert running["taskDefinitionArn"] == "web:2"
    after = ecs.task_definition("web")
    assert after is not None
    assert after["metadata"]["generation"] == generation
    assert after["status"]["revision"] == 2
    assert set(ecs.revisions("web")) == {"web-1", "web-2"}

    ecs.delete("taskdefinitions", "web")
    ecs.wait(
        lambda: revision_states(ecs, "web") == {"web-1": "INACTIVE", "web-2": "INACTIVE"},
        "the deleted family's revisions turn INACTIVE",
        lambda: revision_states(ecs, "web"),
    )
    assert ecs.status("runner")["lastStatus"] == "RUNNING"
    assert ecs.pod("runner") is not None

    ecs.create_task("latest", "web")
    failed = ecs.wait_stopped("latest")
    assert failed["stopCode"] == "TaskFailedToStart"
    assert 'task definition "web" has no ACTIVE revision' in failed["stoppedReason"]
    ecs.create_task("pinned", "web:1")
    failed = ecs.wait_stopped("pinned")
    assert failed["stopCode"] == "TaskFailedToStart"
    assert '"web:1" is INACTIVE' in failed["stoppedReason"]
    assert not ecs.pods_of("latest")
    assert not ecs.pods_of("pinned")
    ecs.wait_warning("pinned", "TaskFailedToStart")

    ecs.create(task_definition("web", container("app", memoryReservation=32)))
    status = ecs.wait_accepted("web")
    assert status["revision"] == 3
    assert revision_states(ecs, "web") == {
        "web-1": "INACTIVE",
        "web-2": "INACTIVE",
        "web-3": "ACTIVE",
    }
    assert ecs.status("runner")["lastStatus"] == "RUNNING"


def test_privileged_is_refused_unless_the_operator_allows_it(
    ecs: Ecs, default_operator: OperatorProcess
) -> None:
    privileged = container("app", privileged=True)
    ecs.create_task_definition("root", privileged)
    status = ecs.wait_accepted("root", "False")
    accepted = condition(status, "Accepted")
    assert "spec.containerDefinitions[0].privileged" in accepted["message"]
    assert "--allow-privileged" in accepted["message"]
    # The Warning event follows the status write: wait for it rather than race it.
    ecs.wait(
        lambda: ecs.warning_reasons("root"),
        "a Warning event",
        lambda: [e["reason"] for e in ecs.events("root")],
    )

    ecs.create_task("refused", "root")
    stopped = ecs.wait_stopped("refused")
    assert stopped["stopCode"] == "TaskFailedToStart"
    assert "privileged" in stopped["stoppedReason"]
    assert not ecs.pods_of("refused")

    default_operator.restart(allow_privileged=True)
    try:
        status = ecs.wait_accepted("root", "True")
        assert status["revision"] == 1
        ecs.create_task("allowed", "root")
        ecs.wait_last_status("allowed", "RUNNING")
        pod = ecs.pod("allowed")
        assert pod is not None
        assert pod["spec"]["containers"][0]["securityContext"]["privileged"] is True
    finally:
        default_operator.restart()


def test_a_revision_name_held_by_someone_else_is_skipped_once_and_said(ecs: Ecs) -> None:
    """A tenant squats `web-2` with a ControllerRevision that looks like one of ours (the family
    label, not the operator's): revision 2 cannot be stored under its name, so web's second
    revision is web:3, said once in a Warning, and the squatter is left alone (before: a 409
    retried five times a second, for ever)."""
    squatter = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": "web-2", "labels": {FAMILY_LABEL: "web"}},
        "revision": 2,
        "data": {"forged": True},
    }
    path = ecs.path("controllerrevisions", group="apps", version="v1")
    created = ecs.http.post(path, json=squatter)
    assert created.status_code == 201, created.text
    ecs.create(task_definition("web", container("app", memoryReservation=32)))
    assert ecs.wait_accepted("web")["revision"] == 1
    ecs.patch("taskdefinitions", "web", {"spec": {"cpu": "256"}})
    ecs.wait(
        lambda: (ecs.task_definition("web") or {}).get("status", {}).get("revision") == 3,
        "revision 3 registered",
        lambda: ecs.task_definition("web"),
    )
    states = {
        name: item["metadata"]["labels"].get(REVISION_STATUS_LABEL)
        for name, item in ecs.revisions("web").items()
    }
    assert states == {"web-1": "ACTIVE", "web-2": None, "web-3": "ACTIVE"}
    taken = [e for e in ecs.events("web") if e["reason"] == "RevisionNameTaken"]
    assert [(e["message"], e.get("count", 1)) for e in taken] == [
        (
            "revision web:2 skipped: ControllerRevision web-2 exists and is not a revision this "
            "operator registered",
            1,
        )
    ]
    left = ecs.get("controllerrevisions", "web-2", group="apps")
    assert left is not None and left["metadata"]["uid"] == created.json()["metadata"]["uid"]
