"""Finished (and unfinished) runs as plain records, from local run dirs or a W&B sweep.

A local run dir follows the run-dir contract (config.yaml, metrics.json, done.json when
training ended normally, environment.json). A sweep root made by `lit_gen.sweep` also holds
sweep.json, whose planned runs without a run dir are reported as "not started".
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lit_gen.config import to_container
from lit_gen.errors import ConfigError, LitGenError
from lit_gen.run.cli import config_from_argv
from lit_gen.run.dir import CONFIG_FILE, DONE_FILE, ENVIRONMENT_FILE, METRICS_FILE
from lit_gen.sweep.file import STATE_FILE, SweepFile

FINISHED, FAILED, NOT_STARTED = "finished", "failed", "not started"
# reference rows (`python -m lit_gen.bench reference`): what a table's rows are compared with
REFERENCE_FORMAT = "lit_gen.reference/1"
REAL, NOISE = "real data", "uniform noise"
WANDB_SWEEP = re.compile(r"^[\w.-]+/[\w.-]+/[\w]+$")  # entity/project/sweep_id


@dataclass
class RunRecord:
    """One run as the bench sees it.

    Args:
        name: the run dir relative to the given root (or the W&B run name).
        config: the resolved config (nested dicts).
        metrics: metrics.json (name -> number, plus objects such as `protocol`).
        status: finished | failed (no done marker: crashed, interrupted or still running) |
            not started (planned in sweep.json, no run dir).
        environment: environment.json (library versions, device, git commit), if recorded.
        done: done.json (epoch, g_step, wall_seconds), if finished.
        path: the run dir (local runs; None for W&B runs).
        member: the ensemble member (index into config `seeds`) this record stands for,
            named `<run>/member<k>`; None for a plain run.
    """

    name: str
    config: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    status: str = FINISHED
    environment: dict[str, Any] | None = None
    done: dict[str, Any] | None = None
    path: Path | None = None
    member: int | None = None

    @property
    def run(self) -> str:
        """The run this record belongs to: an ensemble member's run name, else `name`."""
        return self.name if self.member is None else self.name.removesuffix(f"/member{self.member}")


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # a half-written file of a crashed run: treated as absent
    return data if isinstance(data, dict) else None


def _read_config(path: Path) -> dict[str, Any] | None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict) or not {"model", "data", "trainer"} <= data.keys():
        return None  # not a lit_gen run config (e.g. wandb's own files/config.yaml)
    return data


def find_run_dirs(root: Path) -> list[Path]:
    """Every directory under `root` (or `root` itself) holding a lit_gen config.yaml; hidden
    directories (e.g. .attempts) and the insides of a run dir are not searched."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if CONFIG_FILE in filenames and _read_config(d / CONFIG_FILE) is not None:
            found.append(d)
            dirnames[:] = []
            continue
        dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
    return sorted(found)


def read_run_dir(run_dir: Path, name: str) -> list[RunRecord]:
    """The run's record; an ensemble run (config `seeds`) gives one record per member."""
    config = _read_config(run_dir / CONFIG_FILE) or {}
    metrics = _read_json(run_dir / METRICS_FILE) or {}
    done = _read_json(run_dir / DONE_FILE)
    status = FINISHED if done is not None and (run_dir / METRICS_FILE).is_file() else FAILED
    environment = _read_json(run_dir / ENVIRONMENT_FILE)
    return run_records(name, config, metrics, status, environment, done, run_dir)


def run_records(name: str, config: dict[str, Any], metrics: dict[str, Any], status: str,
                environment: dict[str, Any] | None = None, done: dict[str, Any] | None = None,
                path: Path | None = None) -> list[RunRecord]:
    """One run's record, or one per member of an ensemble run (config `seeds`), named
    `name/memberK` with `member` K (`.run` gives back `name`)."""
    seeds = config.get("seeds")
    if not seeds:
        return [RunRecord(name, config, metrics, status, environment, done, path)]
    return [RunRecord(f"{name}/member{k}", member_config(config, seed),
                      member_metrics(metrics, k), status, environment, done, path, k)
            for k, seed in enumerate(seeds)]


def distinct_runs(records: list[RunRecord]) -> list[RunRecord]:
    """One record per run: an ensemble's members share their run's metrics.json protocol,
    environment.json and done.json, which count once."""
    runs: dict[tuple[str, str], RunRecord] = {}
    for r in records:
        runs.setdefault((str(r.path), r.run), r)
    return list(runs.values())


def member_config(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """An ensemble member's config: a plain run of its seed (rows group it as one)."""
    return {**config, "seed": seed, "seeds": None}


def member_metrics(metrics: dict[str, Any], k: int) -> dict[str, Any]:
    """Member k's metrics: its entry of `members` over the run's shared keys (protocol,
    epoch, ...); {} when the run has not evaluated its members yet."""
    members = metrics.get("members")
    if not isinstance(members, list) or k >= len(members):
        return {key: v for key, v in metrics.items() if key != "members"} if k == 0 else {}
    shared = {key: v for key, v in metrics.items() if key != "members"}
    return {**shared, **{key: v for key, v in members[k].items() if key != "seed"}}


def _planned_but_absent(root: Path, seen: set[str]) -> list[RunRecord]:
    """Runs that sweep.json planned but that have no run dir yet; their config is rebuilt
    from the sweep's command so that they land in the right row."""
    state = _read_json(root / STATE_FILE)
    if not state:
        return []
    out = []
    for run in state.get("runs", []):
        if run["name"] in seen:
            continue
        # a planned ensemble run lands in its row as its members, like a run dir does
        out += run_records(run["name"], _planned_config(state, run["params"]), {}, NOT_STARTED)
    return out


def _planned_config(state: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    sweep = SweepFile(Path(state.get("sweep_file", "sweep.yaml")),
                      {"command": state["command"], "parameters": {}})
    try:
        _, cfg = config_from_argv([*sweep.fit_args(params), *state.get("overrides", [])])
        return to_container(cfg)
    except (LitGenError, SystemExit):
        return {}  # shown in a row of its own (unknown variant), still counted


def local_records(root: Path) -> list[RunRecord]:
    if not root.exists():
        raise ConfigError(f"no such runs directory: {root}")
    dirs = find_run_dirs(root)
    records = [r for d in dirs for r in read_run_dir(d, str(d.relative_to(root)) if d != root
                                                      else d.name)]
    seen = {r.run for r in records}
    records += _planned_but_absent(root, seen)
    if not records:
        raise ConfigError(f"{root} holds no run dirs (directories with a lit_gen config.yaml)")
    return sorted(records, key=lambda r: r.name)


# --- W&B -----------------------------------------------------------------------------

def _unflatten(config: dict[str, Any]) -> dict[str, Any]:
    """W&B configs mix nested dicts (the logged config) and dotted keys (sweep parameters)."""
    out: dict[str, Any] = {}
    for key in sorted(config, key=lambda k: (k.count("."), k)):  # nested first, dotted win
        value = config[key]
        if isinstance(value, dict) and set(value) == {"value"}:
            value = value["value"]
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[leaf] = value
    return out


def record_from_wandb_run(run: Any) -> RunRecord:
    """A public-API `wandb.apis.public.Run` (anything with .name, .config, .summary, .state,
    .metadata) as a RunRecord."""
    metrics = {k: v for k, v in dict(run.summary).items() if not k.startswith("_")}
    meta = getattr(run, "metadata", None) or {}
    env = None
    if meta:
        gpu = meta.get("gpu")
        device = f"{gpu} x {meta.get('gpu_count', 1)}" if gpu else f"cpu: {meta.get('cpu_count', '?')} cores"
        env = {"device": device, "git_commit": (meta.get("git") or {}).get("commit", "unknown"),
               "libraries": {"python": meta.get("python", "unknown")}}
    status = FINISHED if run.state == "finished" else FAILED
    return RunRecord(run.name, _unflatten(dict(run.config)), metrics, status, env)


def wandb_records(path: str) -> list[RunRecord]:
    """The runs of the W&B sweep `entity/project/sweep_id` (needs network and credentials)."""
    import wandb

    try:
        sweep = wandb.Api().sweep(path)
        runs = list(sweep.runs)
    except Exception as err:  # network, auth, not found: the API raises many kinds
        raise LitGenError(f"cannot read W&B sweep {path}: {str(err).splitlines()[0]}; check "
                          "`wandb login` and the entity/project/sweep_id") from None
    return sorted((record_from_wandb_run(r) for r in runs), key=lambda r: r.name)


def load_records(source: str) -> list[RunRecord]:
    """Runs from a local directory, or from a W&B sweep given as entity/project/sweep_id."""
    p = Path(source)
    if p.exists() or not WANDB_SWEEP.match(source):
        return local_records(p)
    return wandb_records(source)


# --- row keys (shared by the table and the figures) --------------------------------------

def lookup(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def variant(config: dict[str, Any]) -> str:
    """The experiment name without its dataset suffix: dcgan_mnist -> dcgan."""
    exp = str(config.get("experiment") or "?")
    data = str(lookup(config, "data.name") or "")
    return exp[: -len(data) - 1] if data and exp.endswith("_" + data) else exp


def group_value(config: dict[str, Any], key: str) -> str:
    """A row label: `model` / `variant` (the experiment's variant), `dataset` (data.name),
    or any dotted config key."""
    if key in ("model", "variant"):
        return variant(config) if config else "?"
    if key == "dataset":
        key = "data.name"
    value = lookup(config, key)
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)



def read_reference(path: str | Path) -> dict[str, Any]:
    """A reference file ({format, dataset, command, rows: [{name, what, metrics, protocol}]}),
    or a ConfigError saying what is wrong with it."""
    p = Path(path)
    data = _read_json(p)
    if data is None or data.get("format") != REFERENCE_FORMAT or not isinstance(
            data.get("rows"), list):
        raise ConfigError(f"--reference {p}: not a readable reference file; write it with "
                          "`python -m lit_gen.bench reference --config EXP.yaml --out FILE`")
    return data


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)
