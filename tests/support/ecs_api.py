"""Bodies and a small client for the ECS objects of the integration tests (raw HTTP).

`container()`, `task_definition()` and `task()` build manifests from dicts; `Ecs` creates them in
one namespace and waits for their status with deadlines (no fixed sleeps).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from support.helpers import KUBECTL, ClusterTarget, unique_name, wait_for

GROUP = "ecs.operator.dev"
VERSION = "v1alpha1"
TASK_LABEL = f"{GROUP}/task"
FAMILY_LABEL = f"{GROUP}/family"
REVISION_STATUS_LABEL = f"{GROUP}/revision-status"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
IMAGE = "busybox:1.36"
RESOLVE_GRACE = 2.0
PROBE_NAMESPACE = "ecs-operator-probe"
LOG_TAIL_LINES = 80

# What one start's readiness probe writes (a TaskDefinition registered; kept, so that nothing
# of it happens after the start returns): the test's create, the operator's revision and status.
PROBE_WRITES = {
    ("create", "taskdefinitions"): 1,
    ("create", "controllerrevisions"): 1,
    # Up to 3: the first status carries the registration time, a later one the
    # ControllerRevision's timestamp, and start() may return before those land.
    ("patch", "taskdefinitions/status"): 3,
}

KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]
Plugin = Callable[..., subprocess.CompletedProcess[str]]
PLUGIN = Path(sys.executable).parent / "kubectl-ecs"


def plugin_runner(target: ClusterTarget, namespace: str) -> Plugin:
    """`kubectl-ecs ARGS… --kubeconfig K --cluster NAMESPACE`, KUBECONFIG unset (the flags
    alone must be enough), as a CompletedProcess; `via_kubectl=True` runs it through kubectl's
    own plugin lookup."""
    assert PLUGIN.exists(), f"{PLUGIN} is not installed: run `make venv`"
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}

    def run(*args: str, via_kubectl: bool = False) -> subprocess.CompletedProcess[str]:
        where = ["--kubeconfig", str(target.kubeconfig), "--cluster", namespace]
        command = [str(PLUGIN), *args, *where]
        run_env = env
        if via_kubectl:  # kubectl finds `kubectl-ecs` on PATH
            command = [KUBECTL, "ecs", *args, *where]
            run_env = {**env, "PATH": f"{PLUGIN.parent}{os.pathsep}{env.get('PATH', '')}"}
        result = subprocess.run(
            command, capture_output=True, text=True, env=run_env, timeout=120, check=False
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    return run


Body = dict[str, Any]


# --- bodies ---------------------------------------------------------------------------------


def container(name: str = "app", command: list[str] | None = None, **fields: Any) -> Body:
    """A container definition: busybox, 64 MiB, running `command` (default: forever)."""
    body: Body = {"name": name, "image": IMAGE, "memory": 64}
    if command is not None:
        body["command"] = command
    body.update(fields)
    return body


def shell(script: str) -> list[str]:
    """A container command the sandbox kubelet honours (`sleep N`, `exit N`)."""
    return ["sh", "-c", script]


def task_definition(family: str, *containers: Body, **spec: Any) -> Body:
    """A TaskDefinition named after its family (default: one container running forever)."""
    definitions = list(containers) or [container()]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TaskDefinition",
        "metadata": {"name": family},
        "spec": {"family": family, "containerDefinitions": definitions, **spec},
    }


def task(name: str, definition: str, **spec: Any) -> Body:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Task",
        "metadata": {"name": name},
        "spec": {"taskDefinition": definition, **spec},
    }


# --- the operator process ---------------------------------------------------------------


class OperatorProcess:
    """`ecs-operator run` as a subprocess, its output appended to one log file.

    One operator per cluster: starting one stops any other this session started on the same
    cluster (the integration suite's, when the resilience suite starts its own on the real
    control plane), since a second would be refused the Lease, or, leading elsewhere, act
    beside the first."""

    _running: ClassVar[dict[str, OperatorProcess]] = {}

    def __init__(
        self,
        target: ClusterTarget,
        log_path: Path,
        kubeconfig: Path | None = None,
        pod_namespace: str | None = None,
    ) -> None:
        self.target = target
        self.log_path = log_path
        # The operator's own identity (a ServiceAccount token) on a real cluster; the test's
        # admin kubeconfig on the sandbox, which enforces no RBAC.
        self.kubeconfig = kubeconfig or target.kubeconfig
        # What the Deployment's downward API gives it ($POD_NAMESPACE: where its Lease lives).
        self.pod_namespace = pod_namespace
        self.process: subprocess.Popen[bytes] | None = None
        self.allow_privileged = False
        self.extra_args: tuple[str, ...] = ()
        self.starts = 0

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "ecs_operator",
            "run",
            "--kubeconfig",
            str(self.kubeconfig),
            "--liveness",
            "",
            "--resolve-grace",
            str(RESOLVE_GRACE),
            *(["--allow-privileged"] if self.allow_privileged else []),
            *self.extra_args,
        ]

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, allow_privileged: bool = False, extra_args: tuple[str, ...] = ()) -> None:
        """Start the operator (with `extra_args` after the default flags) and return once it
        has handled a fresh probe object. KUBECONFIG is removed from its environment:
        `--kubeconfig` alone must be enough."""
        assert not self.alive, "the operator is already running"
        cluster = str(self.target.kubeconfig.resolve())
        other = OperatorProcess._running.get(cluster)
        if other is not None and other is not self:
            other.stop()
        OperatorProcess._running[cluster] = self
        self.allow_privileged = allow_privileged
        self.extra_args = extra_args
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        if self.pod_namespace:
            env["POD_NAMESPACE"] = self.pod_namespace
            env["POD_SERVICE_ACCOUNT"] = "ecs-operator"
        self.starts += 1
        with self.log_path.open("a") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.command())}\n")
            log.flush()
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        http = self.target.http
        family = f"probe-{self.starts}-{unique_name('p')[2:]}"
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{PROBE_NAMESPACE}/taskdefinitions"
        response = http.post(path, json=task_definition(family, container()))
        assert response.status_code == 201, response.text

        def handled() -> bool:
            assert self.alive, f"the operator exited:\n{self.tail()}"
            status = http.get(f"{path}/{family}").json().get("status") or {}
            # Handled by this process: it holds the Lease (no other operator answered).
            leads = re.search(r" holds the lease | now leads", self._this_start())
            return status.get("revision") is not None and leads is not None

        wait_for(handled, 30, message=lambda: f"the operator never got ready:\n{self.tail()}")

    def _this_start(self) -> str:
        return self.log().rsplit(f"===== start #{self.starts}:", 1)[-1]

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, as a crash or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if not self.alive:
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def restart(self, *, allow_privileged: bool = False, extra_args: tuple[str, ...] = ()) -> None:
        self.stop()
        self.start(allow_privileged=allow_privileged, extra_args=extra_args)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


# --- the client tests use -------------------------------------------------------------------


class Ecs:
    """The ECS objects of one namespace, through the API (raw HTTP, as kubectl sends it)."""

    def __init__(self, target: ClusterTarget, namespace: str, log_tail: Callable[[], str]) -> None:
        self.target = target
        self.http = target.http
        self.namespace = namespace
        self.log_tail = log_tail

    def path(self, plural: str, name: str = "", group: str = GROUP, version: str = VERSION) -> str:
        prefix = "/api/v1" if group == "" else f"/apis/{group}/{version}"
        suffix = f"/{name}" if name else ""
        return f"{prefix}/namespaces/{self.namespace}/{plural}{suffix}"

    # writes

    def create(self, body: Body) -> Body:
        plural = {"Task": "tasks", "TaskDefinition": "taskdefinitions"}[body["kind"]]
        response = self.http.post(self.path(plural), json=body)
        assert response.status_code == 201, response.text
        created: Body = response.json()
        return created

    def create_task_definition(self, family: str, *containers: Body, **spec: Any) -> Body:
        return self.create(task_definition(family, *containers, **spec))

    def create_task(self, name: str, definition: str, **spec: Any) -> Body:
        return self.create(task(name, definition, **spec))

    def patch(self, plural: str, name: str, patch: Body, group: str = GROUP) -> Body:
        version = "v1" if group in ("", "apps") else VERSION
        response = self.http.patch(
            self.path(plural, name, group, version), json=patch, headers=MERGE_PATCH
        )
        assert response.status_code == 200, response.text
        patched: Body = response.json()
        return patched

    def delete(self, plural: str, name: str, group: str = GROUP) -> None:
        version = "v1" if group in ("", "apps") else VERSION
        response = self.http.delete(self.path(plural, name, group, version))
        assert response.status_code in (200, 202), response.text

    def stop_task(self, name: str, reason: str | None = None) -> Body:
        spec: Body = {"desiredStatus": "STOPPED"}
        if reason is not None:
            spec["stoppedReason"] = reason
        return self.patch("tasks", name, {"spec": spec})

    # reads

    def get(self, plural: str, name: str, group: str = GROUP) -> Body | None:
        version = "v1" if group in ("", "apps") else VERSION
        response = self.http.get(self.path(plural, name, group, version))
        if response.status_code == 404:
            return None
        assert response.ok, response.text
        found: Body = response.json()
        return found

    def task(self, name: str) -> Body:
        found = self.get("tasks", name)
        assert found is not None, f"task {name} does not exist"
        return found

    def status(self, name: str) -> Body:
        status: Body = self.task(name).get("status") or {}
        return status

    def task_definition(self, family: str) -> Body | None:
        return self.get("taskdefinitions", family)

    def pod(self, name: str) -> Body | None:
        return self.get("pods", name, group="")

    def list(self, plural: str, selector: str = "", group: str = "") -> list[Body]:
        version = "v1" if group in ("", "apps") else VERSION
        params = {"labelSelector": selector} if selector else {}
        response = self.http.get(self.path(plural, "", group, version), params=params)
        assert response.ok, response.text
        items: list[Body] = response.json()["items"]
        return items

    def pods_of(self, task_name: str) -> list[Body]:
        return self.list("pods", f"{TASK_LABEL}={task_name}")

    def revisions(self, family: str) -> dict[str, Body]:
        found = self.list("controllerrevisions", f"{FAMILY_LABEL}={family}", group="apps")
        return {item["metadata"]["name"]: item for item in found}

    def events(self, name: str) -> list[Body]:
        return [
            event
            for event in self.list("events")
            if event.get("involvedObject", {}).get("name") == name
        ]

    # waiting

    def wait(
        self,
        predicate: Callable[[], Any],
        what: str,
        describe: Callable[[], Any],
        timeout: float = 20,
    ) -> Any:
        return wait_for(
            predicate,
            timeout,
            interval=0.03,
            message=lambda: f"{what}; last seen: {describe()}\noperator log:\n{self.log_tail()}",
        )

    def wait_task(
        self, name: str, predicate: Callable[[Body], Any], what: str, timeout: float = 20
    ) -> Body:
        """The task's status once `predicate(status)` holds (a task the operator has yet to
        create, such as a run's `NAME-2`, is waited for too)."""

        def current() -> Body | None:
            found = self.get("tasks", name)
            return None if found is None else (found.get("status") or {})

        def check() -> Body | None:
            status = current()
            return status if status is not None and predicate(status) else None

        result: Body = self.wait(check, f"task {name}: {what}", current, timeout)
        return result

    def wait_last_status(self, name: str, *wanted: str, timeout: float = 20) -> Body:
        return self.wait_task(
            name, lambda s: s.get("lastStatus") in wanted, f"lastStatus in {wanted}", timeout
        )

    def wait_stopped(self, name: str, timeout: float = 20) -> Body:
        return self.wait_last_status(name, "STOPPED", timeout=timeout)

    def wait_accepted(self, family: str, value: str = "True", timeout: float = 20) -> Body:
        def check() -> Body | None:
            found = self.task_definition(family) or {}
            status: Body = found.get("status") or {}
            return status if condition(status, "Accepted").get("status") == value else None

        result: Body = self.wait(
            check,
            f"taskdefinition {family}: Accepted={value}",
            lambda: (self.task_definition(family) or {}).get("status"),
            timeout,
        )
        return result

    def wait_pod(self, name: str, predicate: Callable[[Body], Any], what: str) -> Body:
        def check() -> Body | None:
            pod = self.pod(name)
            return pod if pod is not None and predicate(pod) else None

        result: Body = self.wait(check, f"pod {name}: {what}", lambda: self.pod(name))
        return result

    def warning_reasons(self, name: str) -> set[str]:
        return {e["reason"] for e in self.events(name) if e.get("type") == "Warning"}

    def wait_warning(self, name: str, reason: str) -> None:
        """Until `name` has a Warning event with `reason` (an event is posted after the
        status it follows, and a real server can show them in that order)."""
        self.wait(
            lambda: reason in self.warning_reasons(name),
            f"the {reason} event",
            lambda: self.warning_reasons(name),
        )


def condition(status: Body, kind: str) -> Body:
    found: Body = next((c for c in status.get("conditions") or () if c["type"] == kind), {})
    return found


def container_status(status: Body, name: str) -> Body:
    found: Body = next((c for c in status.get("containers") or () if c["name"] == name), {})
    return found
