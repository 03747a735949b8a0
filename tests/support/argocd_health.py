"""Run Argo CD Lua health checks the way Argo CD does, from Python (lupa).

Argo CD (`util/lua/lua.go`) runs a health script from `argocd-cm` in a fresh gopher-lua state
(Lua 5.1) with only the package, base and table libraries (plus a reduced `os`), sets the global
`obj` to the live object decoded from JSON, runs the script and reads the table it returns:
`{status, message}`, JSON-decoded, so a missing message is "". A status outside Argo CD's set
becomes Unknown. This module does the same with lupa's Lua 5.1, minus `os` entirely: the scripts
here need none of it, and a script reaching for string, math, io, os or debug fails loudly.

Test cases come from `health_test.yaml` files in Argo CD's own format
(`tests: - healthStatus: {status, message}, inputPath: testdata/x.yaml`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lupa.lua51 import LuaRuntime, lua_type

ROOT = Path(__file__).resolve().parents[2]
HEALTH_DIR = ROOT / "manifests" / "argocd" / "health"
HEALTH_STATUSES = frozenset(
    {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
)

# Everything Lua 5.1 opens beyond what Argo CD gives argocd-cm scripts (base, package, table).
_CLOSE_LIBRARIES = """
debug.setmetatable("", nil)  -- no ("x"):upper() through the string metatable either
string, math, io, os, debug, coroutine = nil, nil, nil, nil, nil, nil
"""


class _JsonLikeLoader(yaml.SafeLoader):
    """YAML as Argo CD sees an object: JSON values, so timestamps stay strings."""


_JsonLikeLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_JsonLikeLoader)


def to_lua(lua: LuaRuntime, value: Any) -> Any:
    """A JSON-like Python value as Lua sees it: maps and 1-based arrays as tables, nulls absent."""
    if isinstance(value, dict):
        table = lua.table()
        for key, item in value.items():
            if item is not None:
                table[key] = to_lua(lua, item)
        return table
    if isinstance(value, list):
        table = lua.table()
        for index, item in enumerate(value, start=1):
            if item is not None:
                table[index] = to_lua(lua, item)
        return table
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"not a JSON value: {value!r} ({type(value).__name__})")


def run_health(script: str, obj: dict[str, Any]) -> dict[str, str]:
    """`{"status", "message"}` of `script` for `obj`; LuaError if the script fails."""
    lua = LuaRuntime(register_eval=False, register_builtins=False)
    lua.execute(_CLOSE_LIBRARIES)
    lua.globals().obj = to_lua(lua, obj)
    result = lua.execute(script)
    if lua_type(result) != "table":
        raise TypeError(f"expect table output from Lua script, not {lua_type(result)}")
    status = result["status"]
    if status not in HEALTH_STATUSES:
        return {"status": "Unknown", "message": "Lua returned an invalid health status"}
    return {"status": status, "message": result["message"] or ""}


@dataclass(frozen=True)
class HealthCase:
    kind_dir: Path
    expected: dict[str, str]
    input_path: str

    @property
    def id(self) -> str:
        return f"{self.kind_dir.name}/{Path(self.input_path).stem}"

    def run(self) -> dict[str, str]:
        script = (self.kind_dir / "health.lua").read_text()
        return run_health(script, load_yaml(self.kind_dir / self.input_path))


def kind_dirs() -> list[Path]:
    """Every `<group>/<Kind>` folder holding a health.lua."""
    return sorted(path.parent for path in HEALTH_DIR.glob("*/*/health.lua"))


def health_cases() -> list[HealthCase]:
    """Every test of every health_test.yaml."""
    return [
        HealthCase(kind_dir, test["healthStatus"], test["inputPath"])
        for kind_dir in kind_dirs()
        for test in load_yaml(kind_dir / "health_test.yaml")["tests"]
    ]
