"""W&B sweep files (sweeps/*.yaml): loading, validation, and the `lit_gen.fit` command of a run.

The same file serves `wandb sweep FILE` (a W&B server chooses the runs; `wandb agent`
launches them) and `python -m lit_gen.sweep FILE` (W&B's open-source `sweeps` engine chooses
them here). So the file is validated against W&B's own schema, and a run's command line is
built exactly as `wandb agent` builds it (`${args}` -> `--key=value`, `${args_no_hyphens}` ->
`key=value`, values formatted with `str()`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lit_gen.errors import ConfigError

STATE_FILE = "sweep.json"  # a local sweep's runs in the order they were chosen

FIT_MODULE = ("-m", "lit_gen.fit")
# the agent's macros lit_gen.fit understands, and how each formats one parameter
ARG_MACROS = {"${args}": "--{key}={value}", "${args_no_hyphens}": "{key}={value}"}
IGNORED_MACROS = ("${env}", "${interpreter}")  # the local runner uses its own interpreter
ENVVAR_MACRO = re.compile(r"\$\{envvar:([A-Za-z0-9_]*)\}")
METHODS = ("grid", "random", "bayes")
MAX_NAME = 96  # longer run names are cut and end in a hash of the parameters


@dataclass(frozen=True)
class SweepFile:
    """A validated sweep file.

    Args:
        path: where it was read from.
        spec: the file's content (a W&B sweep config dict).
    """

    path: Path
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or self.path.stem)

    @property
    def method(self) -> str:
        return self.spec["method"]

    @property
    def metric(self) -> dict[str, Any] | None:
        return self.spec.get("metric")

    @property
    def run_cap(self) -> int | None:
        return self.spec.get("run_cap")

    @property
    def parameter_names(self) -> list[str]:
        return sorted(self.spec["parameters"])

    @property
    def varying_names(self) -> list[str]:
        """Parameters that take more than one value (they name the runs)."""
        return [k for k, p in sorted(self.spec["parameters"].items())
                if "value" not in p and len(p.get("values", [None, None])) > 1]

    def fit_args(self, params: dict[str, Any]) -> list[str]:
        """The arguments after `python -m lit_gen.fit` for one run, as `wandb agent` passes them.

        Args:
            params: {parameter name: value} of the run.
        """
        command = [str(c) for c in self.spec["command"]]
        start = _fit_position(command) + len(FIT_MODULE)
        out: list[str] = []
        for token in command[start:]:
            if token in ARG_MACROS:
                # wandb's agent formats `f"{param}={value}"` (str(value)) in the run config's
                # order, which the sweeps engine sorts by name
                out += [ARG_MACROS[token].format(key=k, value=params[k]) for k in sorted(params)]
            else:
                out.append(ENVVAR_MACRO.sub(lambda m: os.environ.get(m.group(1), m.group(1)),
                                            token))
        return out

    def fit_command(self, params: dict[str, Any], extra: list[str] = ()) -> list[str]:
        return [sys.executable, *FIT_MODULE, *self.fit_args(params), *extra]


def import_sweeps():
    """W&B's `sweeps` package, without the pydantic-v2 warning its model config triggers."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*Valid config keys have changed in V2.*")
        import sweeps  # noqa: I001 (the submodules below define the pydantic models)
        import sweeps.bayes_search  # noqa: F401
        import sweeps.grid_search  # noqa: F401
    return sweeps


def _fit_position(command: list[str]) -> int:
    for i in range(len(command) - 1):
        if tuple(command[i:i + 2]) == FIT_MODULE:
            return i
    return -1


def _check_command(spec: dict[str, Any], where: str) -> None:
    command = spec.get("command")
    if not command:
        raise ConfigError(f"{where}: no `command`; give e.g. command: [${{env}}, python, -m, "
                          "lit_gen.fit, ${args}]")
    command = [str(c) for c in command]
    pos = _fit_position(command)
    if pos < 0:
        raise ConfigError(f"{where}: `command` must run `python -m lit_gen.fit` (got "
                          f"{' '.join(command)})")
    for token in command[:pos]:
        if token.startswith("${") and token not in IGNORED_MACROS:
            raise ConfigError(f"{where}: `command` macro {token} before `-m lit_gen.fit` is "
                              f"not supported; use {', '.join(IGNORED_MACROS)} or `python`")
    rest = command[pos + 2:]
    macros = [t for t in rest if t.startswith("${") and not ENVVAR_MACRO.fullmatch(t)]
    bad = [t for t in macros if t not in ARG_MACROS]
    if bad:
        raise ConfigError(f"{where}: `command` macro {bad[0]} is not understood by lit_gen.fit; "
                          f"use {' or '.join(ARG_MACROS)}")
    if len(macros) != 1:
        raise ConfigError(f"{where}: `command` must pass the parameters exactly once with "
                          f"{' or '.join(ARG_MACROS)} (found {len(macros)})")
    if "config" in spec.get("parameters", {}) and macros[0] != "${args}":
        raise ConfigError(f"{where}: parameter 'config' needs ${{args}} in `command` (it becomes "
                          "--config=FILE); ${args_no_hyphens} would pass config=FILE, which is "
                          "not a config key")


def _check_parameters(spec: dict[str, Any], where: str) -> None:
    for key, value in spec["parameters"].items():
        if "parameters" in value:
            raise ConfigError(f"{where}: parameter '{key}' nests `parameters`; write dotted "
                              f"names instead, e.g. '{key}.<sub key>: {{values: [...]}}'")
    if spec["method"] == "bayes" and not spec.get("metric"):
        raise ConfigError(f"{where}: method bayes needs a `metric: {{name: ..., goal: "
                          "minimize|maximize}}` that the runs write to metrics.json")


def validate_spec(spec: Any, where: str) -> dict[str, Any]:
    """W&B's schema (the `sweeps` package's validator), then what lit_gen.fit needs."""
    import jsonschema

    sweeps = import_sweeps()
    SweepConfig = sweeps.SweepConfig
    schema_violations_from_proposed_config = sweeps.schema_violations_from_proposed_config

    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: a sweep file holds a mapping (method, parameters, command, "
                          "...)")
    try:
        violations = schema_violations_from_proposed_config(spec)
    except ValueError as err:  # a parameter that is not a mapping
        violations = [str(err)]
    if violations:
        shown = "; ".join(dict.fromkeys(violations))  # de-duplicated, in order
        raise ConfigError(f"{where}: not a valid W&B sweep config: {shown}")
    if spec["method"] not in METHODS:
        raise ConfigError(f"{where}: method '{spec['method']}' cannot run locally; use one of "
                          f"{', '.join(METHODS)}")
    try:
        filled = dict(SweepConfig(spec))  # fills W&B's defaults (distributions, metric impute)
    except (jsonschema.ValidationError, ValueError) as err:
        raise ConfigError(f"{where}: not a valid W&B sweep config: "
                          f"{str(err).splitlines()[0]}") from None
    _check_parameters(filled, where)
    _check_command(filled, where)
    return filled


def load_sweep(path: str | Path) -> SweepFile:
    """Read and validate a sweep yaml; a ConfigError names the file and the problem."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"sweep file not found: {p}")
    try:
        spec = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"cannot parse {p}{where}: {problem}; quote values such as "
                          "\"${args}\" inside [...] lists") from None
    return SweepFile(p, validate_spec(spec, str(p)))


# --- run names ---------------------------------------------------------------------------

def params_hash(params: dict[str, Any]) -> str:
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


def _value_token(value: Any) -> str:
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"))
        value = re.sub(r'["{}\[\] ]', "", value).replace(":", "-")
    return re.sub(r"[^A-Za-z0-9._+=-]", "_", str(value))


def run_name(params: dict[str, Any], names: list[str]) -> str:
    """A readable, deterministic directory name: `gan_mnist,seed=0`, `lr=0.001,n_critic=5`.

    The `config` parameter contributes its file stem; others `<last key part>=<value>`
    (the full key where two parameters share a last part). Cut to MAX_NAME characters with a
    hash of the parameters when longer.

    Args:
        params: the run's {parameter: value}.
        names: the sweep's varying parameters, the only ones named.
    """
    last = [n.rsplit(".", 1)[-1] for n in names]
    parts = []
    for key in sorted(k for k in params if k in names):
        value = params[key]
        if key == "config":
            parts.append(_value_token(Path(str(value)).stem))
            continue
        short = key.rsplit(".", 1)[-1]
        label = short if last.count(short) == 1 else key
        parts.append(f"{_value_token(label)}={_value_token(value)}")
    name = ",".join(parts) or "run"
    if len(name) > MAX_NAME:
        name = f"{name[:MAX_NAME - 9]}-{params_hash(params)}"
    return name
