"""`ecs-sandbox demo` end to end, as `make sandbox` runs it: a subprocess with its own sandbox
(ephemeral port) and operator, the repository's examples and scenes, the real kubectl against it.

Every wait polls with a deadline. The full show is not timed by `--duration`: the test waits for
the script's last line (however long a busy machine needs, up to SHOW_TIMEOUT), checks, then
stops the demo with SIGTERM; `--duration` there is only a backstop.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecs_sandbox.demo import DEFAULT_EXAMPLES, SCRIPT, choose_script
from support.helpers import ClusterTarget, run_kubectl, wait_for

pytestmark = pytest.mark.own_sandbox

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "manifests" / "examples"
TASKS_PATH = "/apis/ecs.operator.dev/v1alpha1/namespaces/default/tasks"
SERVICES_PATH = "/apis/ecs.operator.dev/v1alpha1/namespaces/default/services"
SERVICE_PATH = f"{SERVICES_PATH}/web-service"
READY = re.compile(r"ready at (http://\S+): export KUBECONFIG=(\S+); kubectl get ecs")
OPERATOR_PID = re.compile(r"operator started \(pid (\d+)\)")
SCRIPT_DONE = re.compile(r"── script done \((\d+) scenes?\)")
STARTUP_TIMEOUT = 60
# The whole show takes about a minute after "ready" on an idle 2-core machine (the CANARY
# deployment about 35 s of it); the deadline is for a loaded one (each scene step has its own
# 45 s deadline inside the demo).
SHOW_TIMEOUT = 180
WAIT_TIMEOUT = 30
# Backstop only: the test stops the demo with SIGTERM once the script is done.
SHOW_DURATION = 300
# Long enough for the operator to start and run the small example's task on a busy machine.
SHORT_DURATION = 20
BALANCED = "zone-a 2 · zone-b 2 · zone-c 2"
# The lifecycle stages (and production shares) of web-canary.yaml's CANARY deployment, in order.
CANARY_STAGES = [
    ("SCALE_UP", "0"),
    ("PRODUCTION_TRAFFIC_SHIFT", "20"),
    ("PRODUCTION_TRAFFIC_SHIFT", "100"),
    ("CLEAN_UP", "100"),
]


class DemoRun:
    """`ecs-sandbox demo --no-live --port 0` as a subprocess; its output collected by a thread."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = workdir
        self.kubeconfig = workdir / "kubeconfig"
        command = [
            sys.executable,
            "-m",
            "ecs_sandbox",
            "demo",
            "--no-live",
            "--port",
            "0",
            "--kubeconfig",
            str(self.kubeconfig),
            *args,
        ]
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "COLUMNS")}
        self.process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its operator too is killed with the group at teardown
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def describe(self) -> str:
        log = self.workdir / "operator.log"
        tail = "\n".join(log.read_text().splitlines()[-30:]) if log.exists() else "(no log)"
        return f"demo output:\n{self.output()}\noperator log (tail):\n{tail}"

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            assert self.process.poll() is None or any(map(pattern.search, self.lines)), (
                f"the demo exited with {self.process.returncode}\n{self.describe()}"
            )
            return next(filter(None, map(pattern.search, self.lines)), None)

        match: re.Match[str] = wait_for(
            found, timeout, interval=0.05, message=lambda: f"no {pattern.pattern!r}\n"
        )
        return match

    def wait_exit(self, timeout: float) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the demo is still running\n{self.describe()}") from None
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """The demo and everything it started (the operator outlives nothing it serves)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator[Any]:
    runs: list[DemoRun] = []

    def start(*args: str) -> DemoRun:
        run = DemoRun(tmp_path, *args)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill()


def task_status(target: ClusterTarget, name: str) -> dict[str, Any]:
    response = target.http.get(f"{TASKS_PATH}/{name}")
    assert response.ok, response.text
    status: dict[str, Any] = response.json().get("status") or {}
    return status


def wait_task(
    demo: DemoRun, target: ClusterTarget, name: str, last_status: str, timeout: float
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        status = task_status(target, name)
        return status if status.get("lastStatus") == last_status else None

    result: dict[str, Any] = wait_for(
        reached,
        timeout,
        interval=0.1,
        message=lambda: (
            f"task {name} never {last_status}: {task_status(target, name)}\n{demo.describe()}"
        ),
    )
    return result


def exit_codes(status: dict[str, Any]) -> dict[str, int | None]:
    return {c["name"]: c.get("exitCode") for c in status.get("containers") or ()}


def service_tasks(target: ClusterTarget, service: str = "web-service") -> list[dict[str, Any]]:
    response = target.http.get(
        TASKS_PATH, params={"labelSelector": f"ecs.operator.dev/service={service}"}
    )
    assert response.ok, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@pytest.mark.timeout(SHOW_TIMEOUT + STARTUP_TIMEOUT + 60)
def test_demo_plays_the_examples_and_the_service_scenes(start_demo: Any, tmp_path: Path) -> None:
    demo: DemoRun = start_demo("--duration", str(SHOW_DURATION))
    ready = demo.wait_for_line(READY, STARTUP_TIMEOUT)
    assert Path(ready.group(2)) == demo.kubeconfig.resolve()
    operator_pid = int(demo.wait_for_line(OPERATOR_PID, 1).group(1))
    target = ClusterTarget("demo", demo.kubeconfig)
    assert target.configuration.host == ready.group(1)
    cache = tmp_path / "kubectl-cache"

    # Every example passed the CRD schemas: kubectl finds each object of the files.
    def all_created() -> subprocess.CompletedProcess[str] | None:
        result = run_kubectl(demo.kubeconfig, cache, "get", "-f", str(EXAMPLES), "-o", "name")
        return result if result.returncode == 0 else None

    created = wait_for(all_created, WAIT_TIMEOUT, interval=0.2, message=demo.describe)
    assert "task.ecs.operator.dev/web-1" in created.stdout
    assert "service.ecs.operator.dev/web-service" in created.stdout

    batch = wait_task(demo, target, "batch-1", "STOPPED", WAIT_TIMEOUT)
    assert batch["stopCode"] == "EssentialContainerExited"
    assert exit_codes(batch) == {"report": 0}

    web = wait_task(demo, target, "web-1", "RUNNING", WAIT_TIMEOUT)
    assert exit_codes(web)["migrate"] == 0  # the SUCCESS dependency ran first

    crash = wait_task(demo, target, "crash-1", "STOPPED", WAIT_TIMEOUT)
    assert crash["stopCode"] == "EssentialContainerExited"
    assert exit_codes(crash) == {"app": 1}

    secretless = wait_task(demo, target, "needs-secret-1", "STOPPED", WAIT_TIMEOUT)
    assert secretless["stopCode"] == "TaskFailedToStart"
    assert 'Secret "db-credentials" not found' in secretless["stoppedReason"]

    spread_zones = {
        wait_task(demo, target, f"spread-{n}", "RUNNING", WAIT_TIMEOUT)["availabilityZone"]
        for n in (1, 2, 3)
    }
    assert spread_zones == {"zone-a", "zone-b", "zone-c"}
    for name in ("pinned-1", "pinned-2"):
        pinned = wait_task(demo, target, name, "RUNNING", WAIT_TIMEOUT)
        assert pinned["availabilityZone"] != "zone-c"

    listed = run_kubectl(demo.kubeconfig, cache, "get", "ecs")
    assert listed.returncode == 0, listed.stderr
    for name in ("taskdefinition.ecs.operator.dev/batch", "taskdefinition.ecs.operator.dev/web"):
        assert name in listed.stdout
    for name in ("batch-1", "web-1", "crash-1", "needs-secret-1", "spread-1", "pinned-2"):
        assert f"task.ecs.operator.dev/{name} " in listed.stdout

    # The show: every scene played to its end, none failed.
    done = demo.wait_for_line(SCRIPT_DONE, SHOW_TIMEOUT)
    assert int(done.group(1)) == len(SCRIPT), demo.describe()
    output = demo.output()
    assert "rejected" not in output
    assert "failed:" not in output, demo.describe()

    # 1. The service ran 6 tasks, two per zone.
    assert f"web-service: 6 tasks RUNNING, by zone: {BALANCED}" in output
    # 2. The killed task stopped as ECS says and a new task took its place.
    killed = demo.wait_for_line(
        re.compile(
            r"(web-service-\w+) STOPPED, EssentialContainerExited \(exit 137\).*; "
            r"replaced by (web-service-\w+), RUNNING"
        ),
        1,
    )
    victim, replacement = killed.group(1), killed.group(2)
    assert victim != replacement
    stopped = task_status(target, victim)
    assert (stopped["lastStatus"], stopped["stopCode"]) == ("STOPPED", "EssentialContainerExited")
    assert exit_codes(stopped) == {"app": 137}
    # 3. The lost zone's tasks were stopped as lost and replaced elsewhere, then rebalanced.
    lost_zone = demo.wait_for_line(re.compile(r"Zone (zone-\w+) goes dark"), 1).group(1)
    moved = demo.wait_for_line(re.compile(r"replaced: 6 tasks RUNNING, by zone: (.*)"), 1)
    assert f"{lost_zone} 0" in moved.group(1)
    assert f"AZ balanced: 6 tasks RUNNING, by zone: {BALANCED}" in output
    tasks = service_tasks(target)
    lost = [
        task["status"]
        for task in tasks
        if "was lost" in (task.get("status") or {}).get("stoppedReason", "")
    ]
    assert lost, demo.describe()
    assert {status["availabilityZone"] for status in lost} == {lost_zone}
    assert {status["stopCode"] for status in lost} == {"TerminationNotice"}
    # 4. Revision 2 rolled out and its deployment completed.
    assert re.search(r"deployment ecs-svc/\d+ of web-service:2 COMPLETED: 6 tasks RUNNING", output)
    response = target.http.get(SERVICE_PATH)
    assert response.ok, response.text
    status = response.json()["status"]
    assert status["runningCount"] == 6
    assert [
        (d["status"], d["taskDefinition"], d["rolloutState"]) for d in status["deployments"]
    ] == [("PRIMARY", "web-service:2", "COMPLETED")]

    def running() -> list[dict[str, Any]]:
        return [
            t["status"] for t in service_tasks(target) if t["status"]["lastStatus"] == "RUNNING"
        ]

    assert {s["taskDefinitionArn"] for s in running()} == {"web-service:2"}
    # A deployment may end unbalanced (a zone was lost in scene 3); AZ rebalancing follows.
    wait_for(
        lambda: (
            sorted(s["availabilityZone"] for s in running())
            == sorted(["zone-a", "zone-b", "zone-c"] * 2)
        ),
        WAIT_TIMEOUT,
        message=lambda: f"not two tasks per zone: {[s['availabilityZone'] for s in running()]}",
    )
    # The service's ECS events were narrated as they came.
    assert "  event: (service web-service) has reached a steady state." in output
    # 5. shop's CANARY deployment of shop:2 went through ECS's lifecycle stages to COMPLETED:
    # each stage printed as the scene saw it (a stage may pass between two reads: the bake
    # times are 0), in order, and an event for every one.
    canary = output.split(f"── scene 6/{len(SCRIPT)}")[1]
    stages = re.findall(r"^(\w+): ([\d.]+) % of production on shop:2$", canary, re.MULTILINE)
    assert stages[0] == CANARY_STAGES[0] and stages[-1] == CANARY_STAGES[-1], canary
    assert stages == [stage for stage in CANARY_STAGES if stage in stages], canary
    completed = "COMPLETED: 2 tasks RUNNING shop:2, 100 % of production on it; shop:1 stopped"
    assert canary.index(completed) > canary.index("CLEAN_UP: 100 % of production on shop:2")
    shifts = [
        canary.index(f"shifted {share}% of production traffic to shop:2 (PRODUCTION_TRAFFIC_SHIFT)")
        for share in (20, 100)
    ]
    assert shifts == sorted(shifts), canary
    response = target.http.get(f"{SERVICES_PATH}/shop")
    assert response.ok, response.text
    shop = response.json()
    assert shop["spec"]["deploymentConfiguration"]["strategy"] == "CANARY"
    assert [
        (d["status"], d["taskDefinition"], d["rolloutState"], d["productionTrafficWeight"])
        for d in shop["status"]["deployments"]
    ] == [("PRIMARY", "shop:2", "COMPLETED", 100)]
    shop_running = [t["status"] for t in service_tasks(target, "shop")]
    assert {s["taskDefinitionArn"] for s in shop_running if s["lastStatus"] == "RUNNING"} == {
        "shop:2"
    }

    # SIGTERM stops the demo, its operator and its sandbox; the last table lists every task.
    demo.process.send_signal(signal.SIGTERM)
    assert demo.wait_exit(30) == 0, demo.describe()
    final = demo.output().split("tasks at exit")[-1]
    batch_row = next(line for line in final.splitlines() if " batch-1 " in line)
    assert "STOPPED" in batch_row
    assert "EssentialContainerExited (exit 0)" in batch_row
    assert f" {victim} " in final
    wait_for(
        lambda: not Path(f"/proc/{operator_pid}").exists(),
        10,
        message="the operator subprocess outlived the demo",
    )
    host, port = ready.group(1).removeprefix("http://").split(":")
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2):
        pass


BAD_TASK = """\
apiVersion: ecs.operator.dev/v1alpha1
kind: Task
metadata:
  name: bad-ref
spec:
  taskDefinition: "not a family!"
"""

SMALL_EXAMPLE = """\
apiVersion: ecs.operator.dev/v1alpha1
kind: Task
metadata:
  name: forever-1
spec:
  taskDefinition: forever
---
apiVersion: ecs.operator.dev/v1alpha1
kind: TaskDefinition
metadata:
  name: forever
spec:
  containerDefinitions:
    - name: app
      image: busybox:1.36
      memory: 64
      command: ["sh", "-c", "while true; do sleep 5; done"]
"""


def test_demo_reports_a_rejected_example_and_exits_on_its_own(
    start_demo: Any, tmp_path: Path
) -> None:
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "a-bad.yaml").write_text(BAD_TASK)
    (examples / "b-small.yaml").write_text(SMALL_EXAMPLE)
    demo: DemoRun = start_demo("--examples", str(examples), "--duration", str(SHORT_DURATION))
    demo.wait_for_line(READY, STARTUP_TIMEOUT)
    rejected = demo.wait_for_line(re.compile(r"a-bad\.yaml: Task/bad-ref rejected: (.*)"), 10)
    assert "spec.taskDefinition" in rejected.group(1)
    # The TaskDefinition is created before the Task that names it, whatever the file order.
    order = [line for line in demo.lines if "b-small.yaml:" in line]
    assert "TaskDefinition/forever created" in order[0], demo.describe()
    wait_task(demo, ClusterTarget("demo", demo.kubeconfig), "forever-1", "RUNNING", SHORT_DURATION)

    assert demo.wait_exit(SHORT_DURATION + 30) == 0, demo.describe()
    # Other examples: the service scenes (which act on the repository's Service) stay off.
    assert "── scene 1/1: the examples" in demo.output()
    assert "── script done (1 scene)" in demo.output()
    final = demo.output().split("tasks at exit")[-1]
    assert "RUNNING" in next(line for line in final.splitlines() if " forever-1 " in line)


def test_an_operator_never_outlives_a_killed_demo(start_demo: Any, tmp_path: Path) -> None:
    """SIGKILL leaves the demo no chance to stop its operator: the kernel ends it instead, so
    no orphan keeps retrying the dead sandbox's port (and takes the port and the Lease of the
    next sandbox that gets it)."""
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "small.yaml").write_text(SMALL_EXAMPLE)
    demo: DemoRun = start_demo("--examples", str(examples), "--duration", str(SHORT_DURATION))
    demo.wait_for_line(READY, STARTUP_TIMEOUT)
    operator_pid = int(demo.wait_for_line(OPERATOR_PID, STARTUP_TIMEOUT).group(1))
    # The operator at work (an operator killed while it starts exits on its own).
    demo.wait_for_line(re.compile(r"small\.yaml: .*Task/forever-1 created"), WAIT_TIMEOUT)
    wait_task(demo, ClusterTarget("demo", demo.kubeconfig), "forever-1", "RUNNING", SHORT_DURATION)
    demo.process.kill()  # the demo alone, not its process group
    demo.process.wait(10)
    wait_for(
        lambda: not _alive(operator_pid),
        10,
        message="the operator subprocess outlived its SIGKILLed demo",
    )


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by init, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_scenes_play_only_on_the_repository_examples(tmp_path: Path) -> None:
    assert choose_script(DEFAULT_EXAMPLES, scenes=True) == SCRIPT
    assert len(SCRIPT) == 6
    only_examples = SCRIPT[:1]
    assert choose_script(DEFAULT_EXAMPLES, scenes=False) == only_examples  # --no-scenes
    assert choose_script(tmp_path, scenes=True) == only_examples


def test_demo_rejects_an_examples_file_that_is_not_an_object(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "broken.yaml").write_text("apiVersion: v1\nmetadata:\n  name: x\n")
    result = subprocess.run(
        [sys.executable, "-m", "ecs_sandbox", "demo", "--examples", str(examples), "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"{examples / 'broken.yaml'}: document 1: kind is missing" in result.stderr
