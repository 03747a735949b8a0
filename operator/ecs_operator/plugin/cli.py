"""`kubectl ecs VERB …` (the console script `kubectl-ecs`): ECS's verbs and flag names.

Options every verb takes: `--cluster` (the namespace; default the kubeconfig context's, else
`default`), `--kubeconfig` and `--context` as kubectl has them, `--output json|table` (default
table). Exit codes: 0 done, 1 it could not be done (not found, refused by the cluster, a waiter
failed or timed out), 2 bad input (the message names the field or flag).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from ecs_operator import __version__
from ecs_operator.kube.client import ConfigError, KubeClient, KubeError, kubeconfig_namespace
from ecs_operator.models.task import MAX_RUN_TASK_COUNT
from ecs_operator.plugin import commands, translate
from ecs_operator.plugin.commands import CommandError, Result
from ecs_operator.plugin.translate import InputError

PROG: Final = "kubectl ecs"
DEFAULT_NAMESPACE: Final = "default"
REGISTER_TIMEOUT: Final = 30.0
WAIT_TIMEOUT: Final = 600.0
"""ECS's waiters give up after 10 minutes (40 x 15 s for services-stable, 100 x 6 s for tasks)."""
WAIT_INTERVAL: Final = 1.0
INPUT_ERROR: Final = 2
FAILED: Final = 1

Handler = Callable[[argparse.Namespace, "Session"], Coroutine[Any, Any, "Result | str"]]


# --- input ---------------------------------------------------------------------------------------


def read_json_argument(value: str, what: str, stdin: TextIO | None = None) -> Any:
    """A JSON argument as the AWS CLI takes it: `file://PATH`, a plain path, `-` (stdin) or the
    JSON itself."""
    if value == "-":
        text = (stdin or sys.stdin).read()
    elif value.lstrip().startswith(("{", "[")):
        text = value
    else:
        path = value.removeprefix("file://")
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise InputError(f"{what}: cannot read {path}: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise InputError(f"{what}: {path} is not UTF-8 text") from None
    return translate.parse_json(text, what)


def _optional_json(value: str | None, what: str) -> Any:
    return None if value is None else read_json_argument(value, what)


# --- the session: namespace and client -----------------------------------------------------------


class Session:
    """The cluster a command talks to: the namespace (`--cluster`) and the client, made on
    first use (so bad input is reported before any kubeconfig is read)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._kube: KubeClient | None = None

    def namespace(self, from_input: str | None = None) -> str:
        """`--cluster`, else the request's `cluster`, else the kubeconfig context's namespace,
        else `default`."""
        if self.args.cluster:
            return translate.cluster_namespace(self.args.cluster)
        if from_input:
            return translate.cluster_namespace(from_input)
        self._check_kubeconfig()
        return kubeconfig_namespace(self.args.kubeconfig, self.args.context) or DEFAULT_NAMESPACE

    def _check_kubeconfig(self) -> None:
        path = self.args.kubeconfig
        if path and not Path(path).is_file():
            raise CommandError(f"--kubeconfig: {path} does not exist or is not a file")

    def connect(self, from_input: str | None = None) -> tuple[KubeClient, str]:
        """The client and the namespace (checked first: a bad `--cluster` is bad input)."""
        namespace = self.namespace(from_input)
        if self._kube is None:
            self._check_kubeconfig()
            self._kube = KubeClient.from_kubeconfig(
                self.args.kubeconfig, context=self.args.context, threads=4, max_attempts=4
            )
        return self._kube, namespace

    def close(self) -> None:
        if self._kube is not None:
            self._kube.close()


# --- the verbs -----------------------------------------------------------------------------------


async def _register(args: argparse.Namespace, session: Session) -> Result:
    request = read_json_argument(args.cli_input_json, "--cli-input-json")
    translate.task_definition_manifest(request)  # bad input first, before the cluster
    kube, namespace = session.connect()
    return await commands.register_task_definition(kube, namespace, request, within=args.timeout)


async def _run_task(args: argparse.Namespace, session: Session) -> Result:
    count = args.count
    if not 1 <= count <= MAX_RUN_TASK_COUNT:
        raise InputError(
            f"--count: {count} is out of range: ECS runs 1-{MAX_RUN_TASK_COUNT} tasks per call"
        )
    tokens = [secrets.token_hex(translate.TASK_NAME_TOKEN_LENGTH // 2) for _ in range(count)]
    options = {
        "overrides": _optional_json(args.overrides, "--overrides"),
        "started_by": args.started_by,
        "group": args.group,
        "placement_constraints": _optional_json(
            args.placement_constraints, "--placement-constraints"
        ),
        "placement_strategy": _optional_json(args.placement_strategy, "--placement-strategy"),
    }
    translate.run_task_manifests(args.task_definition, tokens, **options)
    kube, namespace = session.connect()
    return await commands.run_task(
        kube,
        namespace,
        task_definition=args.task_definition,
        tokens=tokens,
        **options,
    )


async def _stop_task(args: argparse.Namespace, session: Session) -> Result:
    translate.stop_task_patch(args.reason)
    kube, namespace = session.connect()
    return await commands.stop_task(kube, namespace, args.task, args.reason)


async def _create_service(args: argparse.Namespace, session: Session) -> Result:
    request = (
        {}
        if args.cli_input_json is None
        else read_json_argument(args.cli_input_json, "--cli-input-json")
    )
    manifest, cluster = translate.service_manifest(
        request,
        service_name=args.service_name,
        task_definition=args.task_definition,
        desired_count=args.desired_count,
    )
    kube, namespace = session.connect(cluster)
    return await commands.create_service(kube, namespace, manifest)


async def _update_service(args: argparse.Namespace, session: Session) -> Result:
    if args.desired_count is None and args.task_definition is None and not args.force:
        translate.update_service_patch({})  # raises, naming the flags
    kube, namespace = session.connect()
    return await commands.update_service(
        kube,
        namespace,
        args.service,
        desired_count=args.desired_count,
        task_definition=args.task_definition,
        force_new_deployment=args.force,
    )


async def _describe_tasks(args: argparse.Namespace, session: Session) -> Result:
    return await commands.describe_tasks(*session.connect(), args.tasks)


async def _describe_services(args: argparse.Namespace, session: Session) -> Result:
    return await commands.describe_services(*session.connect(), args.services)


async def _logs(args: argparse.Namespace, session: Session) -> str:
    if args.tail is not None and args.tail < 0:
        raise InputError(f"--tail: {args.tail} is negative")
    return await commands.logs(*session.connect(), args.task, args.container, args.tail)


async def _wait(args: argparse.Namespace, session: Session) -> Result:
    if args.timeout <= 0 or args.interval <= 0:
        raise InputError("--timeout and --interval: must be positive numbers of seconds")
    references = args.services if args.waiter == "services-stable" else args.tasks
    kube, namespace = session.connect()
    return await commands.wait(
        kube,
        namespace,
        args.waiter,
        references,
        within=args.timeout,
        interval=args.interval,
    )


# --- arguments -----------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every verb takes; on the verbs' parsers without defaults, so that one given
    before the verb (`kubectl ecs --cluster x describe-tasks …`) is not overwritten."""
    default: Any = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    group = parser.add_argument_group("cluster and output")
    group.add_argument(
        "--cluster",
        default=default(None),
        help="the ECS cluster, i.e. the namespace (default: the kubeconfig context's, else "
        "'default'); a cluster ARN's name is used",
    )
    group.add_argument("--kubeconfig", default=default(None), help="kubeconfig file, as kubectl")
    group.add_argument("--context", default=default(None), help="kubeconfig context, as kubectl")
    group.add_argument(
        "--output",
        "-o",
        choices=("table", "json"),
        default=default("table"),
        help="table (default, plain text) or json (ECS's response shape)",
    )


def _verb(verbs: Any, name: str, handler: Handler, summary: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(name, help=summary, description=summary)
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"kubectl-ecs {__version__}")
    _common(parser, top=True)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    register = _verb(
        verbs,
        "register-task-definition",
        _register,
        "register a task definition (RegisterTaskDefinition JSON): creates or updates the "
        "TaskDefinition named after its family, and waits for the operator's revision",
    )
    register.add_argument(
        "--cli-input-json",
        required=True,
        metavar="JSON",
        help="file://PATH, a plain path, - (stdin) or the JSON itself",
    )
    register.add_argument(
        "--timeout",
        type=float,
        default=REGISTER_TIMEOUT,
        help=f"seconds to wait for the operator to register it (default {REGISTER_TIMEOUT:g})",
    )

    run = _verb(verbs, "run-task", _run_task, "run tasks (RunTask): one Task object per task")
    run.add_argument("--task-definition", required=True, metavar="FAMILY[:REVISION]")
    run.add_argument("--count", type=int, default=1, help="tasks to start, 1-10 (default 1)")
    run.add_argument("--overrides", metavar="JSON", help="RunTask overrides (JSON or file://)")
    run.add_argument("--started-by", metavar="TEXT")
    run.add_argument("--group", metavar="GROUP", help="task group (default family:FAMILY)")
    run.add_argument("--placement-constraints", metavar="JSON")
    run.add_argument("--placement-strategy", metavar="JSON")

    stop = _verb(verbs, "stop-task", _stop_task, "stop a task (StopTask)")
    stop.add_argument("--task", required=True, help="the task's name or id")
    stop.add_argument("--reason", help="reported as the task's stoppedReason (at most 255)")

    create = _verb(
        verbs, "create-service", _create_service, "create a service (CreateService JSON)"
    )
    create.add_argument("--cli-input-json", metavar="JSON", help="as register-task-definition")
    create.add_argument("--service-name", help="the service's name (replaces the JSON's)")
    create.add_argument("--task-definition", metavar="FAMILY[:REVISION]")
    create.add_argument("--desired-count", type=int)

    update = _verb(verbs, "update-service", _update_service, "update a service (UpdateService)")
    update.add_argument("--service", required=True)
    update.add_argument("--desired-count", type=int)
    update.add_argument("--task-definition", metavar="FAMILY[:REVISION]")
    update.add_argument(
        "--force-new-deployment",
        dest="force",
        action="store_true",
        help="start a new deployment even if nothing else changed",
    )

    tasks = _verb(verbs, "describe-tasks", _describe_tasks, "describe tasks (DescribeTasks)")
    tasks.add_argument("--tasks", required=True, nargs="+", metavar="TASK")
    services = _verb(
        verbs, "describe-services", _describe_services, "describe services (DescribeServices)"
    )
    services.add_argument("--services", required=True, nargs="+", metavar="SERVICE")

    logs = _verb(verbs, "logs", _logs, "print the log of a task's container (its Pod's)")
    logs.add_argument("task", metavar="TASK", help="the task's name or id")
    logs.add_argument("-c", "--container", help="the ECS container name (needed if several)")
    logs.add_argument("--tail", type=int, help="the last N lines only")

    waiter = _verb(verbs, "wait", _wait, "wait until services or tasks reach a state")
    waiters = waiter.add_subparsers(dest="waiter", required=True, metavar="WAITER")
    for name, field, summary in (
        ("services-stable", "services", "one deployment, and as many tasks running as desired"),
        ("tasks-stopped", "tasks", "every task STOPPED"),
        ("tasks-running", "tasks", "every task RUNNING (fails if one stops)"),
    ):
        sub = waiters.add_parser(name, help=summary, description=summary)
        sub.add_argument(f"--{field}", required=True, nargs="+")
        sub.add_argument(
            "--timeout",
            type=float,
            default=WAIT_TIMEOUT,
            help=f"seconds before giving up, exit code 1 (default {WAIT_TIMEOUT:g})",
        )
        sub.add_argument(
            "--interval", type=float, default=WAIT_INTERVAL, help="seconds between polls"
        )
        _common(sub, top=False)
    for sub in (register, run, stop, create, update, tasks, services, logs, waiter):
        _common(sub, top=False)
    return parser


# --- running -------------------------------------------------------------------------------------


def _api_error(error: KubeError) -> tuple[int, str]:
    if error.code in (400, 422):
        return INPUT_ERROR, f"the API server refused it: {error.message}"
    if error.code in (401, 403):
        return FAILED, f"not allowed: {error.message}"
    if error.code == 503 and error.reason == "ServiceUnavailable":
        return FAILED, f"cannot reach the API server: {error.message}"
    return FAILED, f"{error.code} {error.reason}: {error.message}"


def _print(result: Result | str, output: str, stdout: TextIO, stderr: TextIO) -> int:
    if isinstance(result, str):
        stdout.write(result)
        return 0
    for note in result.notes:
        print(f"{PROG}: {note}", file=stderr)
    if output == "json":
        if result.payload is not None:
            print(json.dumps(result.payload, indent=4), file=stdout)
    elif result.text:
        print(result.text, file=stdout)
    return result.exit_code


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = build_parser().parse_args(argv)
    session = Session(args)

    def fail(code: int, message: str) -> int:
        print(f"{PROG} {args.verb}: error: {message}", file=err)
        return code

    try:
        result = asyncio.run(args.handler(args, session))
    except InputError as error:
        return fail(INPUT_ERROR, "\n  ".join(["bad input:", *error.problems]))
    except CommandError as error:
        return fail(FAILED, str(error))
    except KubeError as error:
        return fail(*_api_error(error))
    except ConfigError as error:
        return fail(FAILED, f"cannot use the kubeconfig: {error}")
    except OSError as error:  # a kubeconfig or certificate that cannot be read
        return fail(FAILED, str(error))
    except KeyboardInterrupt:
        return 130
    finally:
        session.close()
    try:
        return _print(result, args.output, out, err)
    except BrokenPipeError:  # `kubectl ecs … | head`: the reader left, nothing more to say
        _silence(out)
        return FAILED


def _silence(stream: TextIO) -> None:
    """Point `stream` at /dev/null, so the interpreter's final flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
