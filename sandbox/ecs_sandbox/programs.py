"""How a simulated container "runs": read from its command and args, never executed.

The sandbox has no container runtime. So that one manifest behaves the same on the sandbox and
on a real cluster, the simulated kubelet understands the few commands whose outcome is certain
and treats everything else as a long-running server. The rules, in order:

1. The argv is `command + args` (the image's default when both are empty: runs until stopped).
2. A shell invocation — `sh`, `bash`, `ash`, `dash` or `zsh` (any path) with a `-c` option,
   alone or bundled (`-c`, `-ec`, `-xc`) — runs its SCRIPT (the first operand after the options;
   `["sh", "-c"]` in command and the script in args is the same thing). `-e` (or `set -e`)
   turns on errexit. A shell without `-c` (`sh script.sh`) runs until stopped.
3. The script is read as simple commands separated by `;`, newlines, `&&` and `||` (with the
   shell's short-circuit rules), evaluated in order:
   - `sleep N…` waits N seconds (decimals and s/m/h/d suffixes, several operands add up);
     `sleep infinity` runs until stopped;
   - `exit [N]` ends the script with N (default: the last status), modulo 256;
   - `true`, `:` succeed and `false` fails (status 1), instantly;
   - harmless commands finish instantly with status 0: echo, printf, date, env, printenv, cat,
     ls, hostname, whoami, id, pwd, uname, touch, mkdir, rm, cp, mv, ln, chmod, set, export,
     unset, cd, trap, umask, and `NAME=value` assignments (redirections `>`/`>>` FILE are
     allowed after them);
   - `exec CMD …` runs CMD (a simple command by these rules, or a bare command by rule 4) and
     ends the script with its outcome;
   - anything else (an unknown program, loops, `if`, pipes, background `&`, subshells, a `sleep`
     whose operand is not a number) runs until stopped from that point on.
   A script that reaches its end exits with the status of its last command (0 after harmless
   commands); with errexit, the first failing command (outside `&&`/`||` chains) ends it.
   A script the shell cannot parse (unbalanced quotes) exits 2 at once, as `sh` does.
4. A bare command (no shell) is one simple command by the rules above — `sleep 5` sleeps then
   exits 0, `false` exits 1, `echo hi` exits 0 — and any other program runs until stopped.

Exec probes use the same reading: a probe passes unless its command would end with a non-zero
status (`exit 1`, `false`); a command that would run forever or is unknown passes. So do exec
postStart hooks (`cluster.py`), which also take the seconds the command would run.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh"})
_HARMLESS = frozenset(
    {
        "echo", "printf", "date", "env", "printenv", "cat", "ls", "hostname", "whoami", "id",
        "pwd", "uname", "touch", "mkdir", "rm", "cp", "mv", "ln", "chmod", "set", "export",
        "unset", "cd", "trap", "umask",
    }
)  # fmt: skip
_SEPARATORS = frozenset({";", "&&", "||"})
_OPERATOR_CHARS = frozenset(";&|()<>")
_REDIRECTIONS = frozenset({">", ">>"})
_SLEEP_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True)
class RunPlan:
    """What a container does once started: run `seconds` (None: until stopped), then exit."""

    seconds: float | None
    exit_code: int = 0

    @property
    def forever(self) -> bool:
        return self.seconds is None


FOREVER = RunPlan(seconds=None)


@dataclass(frozen=True)
class _Step:
    """The outcome of one simple command: how long it takes, its status, and whether it ends
    the script (`exit`, `exec`) or runs forever."""

    seconds: float
    status: int
    ends_script: bool = False
    forever: bool = False


_RUNS_FOREVER = _Step(seconds=0.0, status=0, forever=True)


def plan_container(command: list[str] | None, args: list[str] | None) -> RunPlan:
    """The run plan of a container with this `command` and `args` (see the module rules)."""
    argv = [str(word) for word in (command or [])] + [str(word) for word in (args or [])]
    if not argv:
        return FOREVER
    shell_script = _shell_script(argv)
    if shell_script is not None:
        script, errexit = shell_script
        return _run_script(script, errexit=errexit)
    step = _simple_command(argv)
    if step.forever:
        return FOREVER
    return RunPlan(seconds=step.seconds, exit_code=step.status)


def exec_probe_passes(command: list[str] | None) -> bool:
    """An exec probe passes unless its command would end with a non-zero status."""
    plan = plan_container(command, None)
    return plan.forever or plan.exit_code == 0


def _shell_script(argv: list[str]) -> tuple[str, bool] | None:
    """(script, errexit) when argv is `SHELL [options] -c SCRIPT …`, else None."""
    if os.path.basename(argv[0]) not in _SHELLS:
        return None
    has_c = errexit = False
    index = 1
    while index < len(argv) and argv[index][:1] in "-+" and argv[index] not in ("-", "--"):
        option = argv[index]
        if option in ("-o", "+o"):
            index += 2
            continue
        has_c = has_c or "c" in option[1:]
        errexit = errexit or (option[0] == "-" and "e" in option[1:])
        index += 1
    if index < len(argv) and argv[index] == "--":
        index += 1
    if not has_c:
        return None
    # `sh -c` with no script operand is an error in every shell.
    return (argv[index], errexit) if index < len(argv) else ("exit 2", False)


def _tokens(script: str) -> list[str] | None:
    """Shell words and operators (newlines become `;`); None when the script does not parse."""
    lexer = shlex.shlex(
        script.replace("\\\n", " ").replace("\n", ";"), posix=True, punctuation_chars=True
    )
    lexer.commenters = "#"
    try:
        raw = list(lexer)
    except ValueError:
        return None
    tokens: list[str] = []
    for token in raw:
        tokens.extend(_split_operators(token) if _is_operator(token) else [token])
    return tokens


def _is_operator(token: str) -> bool:
    return bool(token) and all(char in _OPERATOR_CHARS for char in token)


def _split_operators(run: str) -> list[str]:
    """`;;` -> `;`, `;`; `&&;` -> `&&`, `;`: shlex groups adjacent operator characters."""
    operators = []
    while run:
        width = 2 if run[:2] in ("&&", "||", ">>") else 1
        operators.append(run[:width])
        run = run[width:]
    return operators


def _commands(tokens: list[str]) -> Iterator[tuple[str, list[str]]]:
    """(operator joining it to the previous command, argv) for each simple command."""
    joiner, words = ";", []
    for token in tokens:
        if token not in _SEPARATORS:
            words.append(token)
        elif words:
            yield joiner, words
            joiner, words = token, []
        elif token != ";":
            joiner = token
        # An empty `;` (a line break after `&&`, or `;;`) keeps the pending joiner.
    if words:
        yield joiner, words


def _run_script(script: str, *, errexit: bool) -> RunPlan:
    tokens = _tokens(script)
    if tokens is None:
        return RunPlan(seconds=0.0, exit_code=2)
    elapsed, status = 0.0, 0
    commands = list(_commands(tokens))
    for position, (joiner, argv) in enumerate(commands):
        if (joiner == "&&" and status != 0) or (joiner == "||" and status == 0):
            continue
        if argv == ["exit"]:
            break
        if argv[0] == "set":
            errexit = errexit or any(o[:1] == "-" and "e" in o[1:] for o in argv[1:])
        step = _simple_command(argv)
        if step.forever:
            return FOREVER
        elapsed += step.seconds
        status = step.status
        if step.ends_script:
            break
        next_joiner = commands[position + 1][0] if position + 1 < len(commands) else ";"
        if errexit and status != 0 and joiner == ";" and next_joiner == ";":
            break
    return RunPlan(seconds=elapsed, exit_code=status)


def _simple_command(argv: list[str]) -> _Step:
    name, operands = argv[0], argv[1:]
    if name == "exec":
        if not operands:
            return _Step(seconds=0.0, status=0)
        inner = _simple_command(operands)
        return _Step(inner.seconds, inner.status, ends_script=True, forever=inner.forever)
    if name == "exit":
        return _exit(operands)
    if "=" in name and not name.startswith("=") and len(argv) == 1:
        return _Step(seconds=0.0, status=0)
    name = os.path.basename(name)
    if name == "sleep":
        return _sleep(operands)
    if name in ("true", ":"):
        return _Step(seconds=0.0, status=0)
    if name == "false":
        return _Step(seconds=0.0, status=1)
    if name in _HARMLESS and _only_file_redirections(operands):
        return _Step(seconds=0.0, status=0)
    return _RUNS_FOREVER


def _only_file_redirections(operands: list[str]) -> bool:
    """True when the only shell syntax among the operands is `> FILE` / `>> FILE`."""
    index = 0
    while index < len(operands):
        word = operands[index]
        if word in _REDIRECTIONS:
            index += 2
            continue
        if _is_operator(word):
            return False
        index += 1
    return True


def _exit(operands: list[str]) -> _Step:
    if not operands:
        return _Step(seconds=0.0, status=0, ends_script=True)
    try:
        code = int(operands[0])
    except ValueError:
        # `exit foo` is "numeric argument required": the shell exits 2.
        return _Step(seconds=0.0, status=2, ends_script=True)
    return _Step(seconds=0.0, status=code % 256, ends_script=True)


def _sleep(operands: list[str]) -> _Step:
    if not operands:
        return _Step(seconds=0.0, status=1)
    total = 0.0
    for operand in operands:
        unit = _SLEEP_UNITS.get(operand[-1:])
        number = operand[:-1] if unit is not None else operand
        try:
            seconds = float(number) * (unit or 1.0)
        except ValueError:
            return _RUNS_FOREVER
        if not math.isfinite(seconds) or seconds < 0:
            return _RUNS_FOREVER
        total += seconds
    return _Step(seconds=total, status=0)
