"""`kubectl ecs` end to end in-process: arguments, where the namespace comes from, output
(tables, ECS-shaped JSON) and exit codes (0, 1 failed, 2 bad input), against `FakeKube`. Bad
input is reported naming the field, never with a traceback, before any cluster is contacted."""

from __future__ import annotations

import io
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ecs_operator.kube.client import NAMESPACES, TASKS, KubeClient, KubeError
from ecs_operator.plugin import cli
from ecs_operator.plugin.translate import InputError
from support.fake_kube import FakeKube

ROOT = Path(__file__).resolve().parents[3]
ECS = "ecs.operator.dev/v1alpha1"


class Cluster(FakeKube):
    def close(self) -> None:
        pass


def kubeconfig(path: Path, namespace: str | None = None, *, context: str = "main") -> Path:
    contexts = [
        {
            "name": "main",
            "context": {
                "cluster": "c",
                "user": "u",
                **({"namespace": namespace} if namespace else {}),
            },
        },
        {"name": "other", "context": {"cluster": "c", "user": "u", "namespace": "elsewhere"}},
    ]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": contexts,
        "current-context": context,
    }
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> Cluster:
    fake = Cluster()
    for namespace in ("default", "team", "elsewhere"):
        fake.seed(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
    monkeypatch.setattr(KubeClient, "from_kubeconfig", classmethod(lambda cls, *a, **k: fake))
    return fake


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def seed_task(kube: FakeKube, name: str, namespace: str = "default") -> None:
    kube.seed(
        TASKS,
        {
            "apiVersion": ECS,
            "kind": "Task",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"taskDefinition": "web"},
            "status": {
                "lastStatus": "RUNNING",
                "containers": [{"name": "app", "lastStatus": "RUNNING"}],
            },
        },
    )


def test_the_console_script_is_installed_beside_ecs_operator() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-ecs"] == "ecs_operator.plugin.cli:main"
    assert scripts["ecs-operator"] == "ecs_operator.__main__:main"


def test_bad_input_names_the_field_exits_2_and_contacts_no_cluster(tmp_path: Path) -> None:
    request = tmp_path / "td.json"
    request.write_text(json.dumps({"family": "web", "containerDefinitions": [{"name": "a"}]}))
    code, out, err = run(
        "register-task-definition", "--cli-input-json", f"file://{request}",
        "--kubeconfig", str(tmp_path / "absent"),
    )  # fmt: skip
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "kubectl ecs register-task-definition: error: bad input:",
        "  containerDefinitions[0].image: required",
    ]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("run-task", "--task-definition", "web", "--count", "0"), "--count: 0 is out of range"),
        (
            ("run-task", "--task-definition", "web", "--overrides", "{"),
            "--overrides: not valid JSON",
        ),
        (("stop-task", "--task", "t", "--reason", "x" * 300), "--reason: 300 characters"),
        (("update-service", "--service", "s"), "give at least one of --desired-count"),
        (("describe-tasks", "--tasks", "t", "--cluster", "Not_A_Namespace"), "--cluster: "),
        (("logs", "t", "--tail", "-1"), "--tail: -1 is negative"),
        (("wait", "tasks-stopped", "--tasks", "t", "--timeout", "0"), "--timeout and --interval"),
        (("register-task-definition", "--cli-input-json", "/no/such/file"), "cannot read"),
    ],
)
def test_each_verb_refuses_bad_flags_with_exit_code_2(argv: tuple[str, ...], message: str) -> None:
    code, _, err = run(*argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_missing_required_flag_is_argparse_s_exit_code_2() -> None:
    with pytest.raises(SystemExit) as raised:
        run("run-task")
    assert raised.value.code == 2


def test_json_arguments_come_from_a_file_a_path_stdin_or_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}')
    assert cli.read_json_argument(f"file://{path}", "--x") == {"a": 1}
    assert cli.read_json_argument(str(path), "--x") == {"a": 1}
    assert cli.read_json_argument(' {"b": 2}', "--x") == {"b": 2}
    assert cli.read_json_argument("-", "--x", stdin=io.StringIO('{"c": 3}')) == {"c": 3}
    with pytest.raises(InputError, match="--x: cannot read"):
        cli.read_json_argument(str(tmp_path / "absent.json"), "--x")


def test_the_namespace_is_the_flag_else_the_request_s_else_the_context_s_else_default(
    tmp_path: Path,
) -> None:
    def namespace(argv: list[str], from_input: str | None = None) -> str:
        args = cli.build_parser().parse_args([*argv, "describe-tasks", "--tasks", "t"])
        return cli.Session(args).namespace(from_input)

    with_namespace = str(kubeconfig(tmp_path / "a", "team"))
    without = str(kubeconfig(tmp_path / "b"))
    assert namespace(["--kubeconfig", with_namespace]) == "team"
    assert namespace(["--kubeconfig", with_namespace, "--context", "other"]) == "elsewhere"
    assert namespace(["--kubeconfig", without]) == "default"
    assert namespace(["--kubeconfig", with_namespace], from_input="prod") == "prod"
    assert namespace(["--kubeconfig", with_namespace, "--cluster", "x"], from_input="prod") == "x"


def test_describe_prints_a_table_or_ecs_json(kube: Cluster, tmp_path: Path) -> None:
    seed_task(kube, "web-1", "team")
    config = str(kubeconfig(tmp_path / "k", "team"))
    code, out, _ = run("describe-tasks", "--tasks", "web-1", "gone", "--kubeconfig", config)
    assert code == 0
    assert out.splitlines()[0].split()[:3] == ["NAME", "TASK", "DEFINITION"]
    assert "MISSING: gone" in out
    # Options before the verb count as well as after it.
    code, out, _ = run("-o", "json", "--cluster", "team", "describe-tasks", "--tasks", "web-1")
    described = json.loads(out)
    assert code == 0 and described["failures"] == []
    [task] = described["tasks"]
    assert (task["name"], task["clusterArn"], task["lastStatus"]) == ("web-1", "team", "RUNNING")


def test_what_cannot_be_done_exits_1_with_the_reason(kube: Cluster) -> None:
    code, out, err = run("stop-task", "--task", "nope", "--cluster", "team")
    assert (code, out) == (1, "")
    assert err == "kubectl ecs stop-task: error: task nope not found in cluster team\n"
    code, _, err = run("wait", "tasks-stopped", "--tasks", "nope", "--cluster", "team")
    assert code == 1 and "waiter tasks-stopped failed: task nope: MISSING" in err


def test_api_errors_are_sorted_into_bad_input_and_failures(
    kube: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(code: int, reason: str) -> None:
        async def get(*args: Any, **kwargs: Any) -> Any:
            raise KubeError(code, reason, "the message")

        monkeypatch.setattr(kube, "get", get)

    refuse(422, "Invalid")
    assert run("describe-services", "--services", "s")[0] == 2
    refuse(403, "Forbidden")
    code, _, err = run("describe-services", "--services", "s")
    assert code == 1 and "not allowed: the message" in err
    refuse(503, "ServiceUnavailable")
    code, _, err = run("describe-services", "--services", "s")
    assert code == 1 and "cannot reach the API server" in err
