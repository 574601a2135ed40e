"""`python -m lit_gen.bench RUNS_DIR_OR_SWEEP`: finished runs reduced to a benchmark table.

One row per group (default: variant and dataset), each metric as mean ± sample std
(numpy ddof=1) over the runs of the group (default: the seeds), with the number of runs.
Markdown and CSV, plus the protocol recorded in metrics.json, the library versions, device
and git commit recorded by the runs. Nothing in the output depends on when or where the
bench ran, so the same runs give byte-identical files. A run that failed, or lacks a metric,
is counted and named, never dropped.

Reference rows (`--reference FILE`, written by `python -m lit_gen.bench reference`): the
real-vs-real floor and uniform noise under the runs' protocol, printed under the model rows,
with each row's ratio to both in `--ratio-metric`. Published numbers (`--published FILE`, a
small yaml under benchmarks/published/) are either one number per model, in a column of their
own with the Spearman rank correlation between the two orderings, or whole rows of a paper's
table (several metrics, mean ± its spread), printed under ours, marked as published, with
their source and the differences of protocol. `--spread se` shows the standard error of the
mean (sample std / sqrt(n)) instead of the sample std.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import io
import json
import math
import shlex
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lit_gen.bench.figures import draw_toy_scatter
from lit_gen.bench.records import (
    FAILED,
    FINISHED,
    NOISE,
    NOT_STARTED,
    REAL,
    RunRecord,
    distinct_runs,
    group_value,
    is_finite_number,
    is_number,
    load_records,
    lookup,
    read_reference,
)
from lit_gen.errors import ConfigError, cli_main

DDOF = 1  # sample standard deviation over seeds
#: what follows "±" in a cell: the sample std, or the standard error of the mean (std / sqrt n)
SPREADS = {"std": "sample std (numpy ddof=1)",
           "se": "standard error of the mean (sample std, ddof=1, / sqrt(n))"}
DEFAULT_GROUP_BY = "model,dataset"
DEFAULT_OVER = "seed"
# metrics.json entries that describe training rather than sample quality
DEFAULT_EXCLUDE = ("epoch", "g_step", "step", "train/*", "val/*", "ddp_*", "*time*",
                   "*seconds*", "*throughput*", "*per_sec*")
# config keys that may differ inside a row without making its runs different experiments
IGNORED_CONFIG_KEYS = ("run.*", "resume", "logger.*", "experiment", "data.root", "data.download",
                       "data.num_workers", "trainer.enable_progress_bar",
                       "trainer.enable_model_summary", "metrics.cache_dir")
NON_FINITE = {"nan", "inf", "-inf"}  # how metrics.json stores non-finite numbers
PROVENANCE_KEYS = ("protocol",)  # objects in metrics.json printed, not tabulated


# --- reading values --------------------------------------------------------------------

def flat(d: dict[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flat(v, key, sep))
        else:
            out[key] = v
    return out


def metric_values(record: RunRecord) -> dict[str, Any]:
    """The run's scalar metrics (nested objects flattened with '/'), provenance excluded."""
    body = {k: v for k, v in record.metrics.items() if k not in PROVENANCE_KEYS}
    return {k: v for k, v in flat(body, sep="/").items()
            if is_number(v) or (isinstance(v, str) and v in NON_FINITE)}


def matches(name: str, patterns: list[str] | tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def select_metrics(records: list[RunRecord], include: list[str] | None,
                   exclude: list[str]) -> list[str]:
    """Columns: the named metrics in the order given (globs expand sorted), or every scalar
    the finished runs recorded except `exclude`."""
    found = sorted({k for r in records if r.status == FINISHED for k in metric_values(r)})
    if not include:
        return [k for k in found if not matches(k, exclude)]
    out: list[str] = []
    for pattern in include:
        if any(c in pattern for c in "*?["):
            out += [k for k in found if fnmatch.fnmatchcase(k, pattern) and k not in out]
        elif pattern not in out:
            out.append(pattern)  # named explicitly: a column even when no run has it
    return out


# --- statistics --------------------------------------------------------------------------

@dataclass
class Cell:
    """One metric over the runs of one row."""

    values: list[float]  # finite values of the finished runs, in run-name order
    missing: int  # finished runs without the metric
    nonfinite: int  # finished runs where it is nan/inf
    failed: int  # runs of the row that started and did not finish
    not_started: int = 0  # runs planned in sweep.json without a run dir

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float | None:
        return float(np.std(self.values, ddof=DDOF)) if len(self.values) > DDOF else None

    def spread(self, kind: str = "std") -> float | None:
        """The number after "±": the sample std, or (kind "se") the standard error."""
        std = self.std
        if std is None or kind == "std":
            return std
        return std / math.sqrt(len(self.values))

    def text(self, spread: str = "std") -> str:
        if not self.values:
            if self.nonfinite:
                return "nan"
            if self.missing:
                return "missing"
            return NOT_STARTED if self.not_started and not self.failed else "failed"
        mean, std = self.mean, self.spread(spread)
        out = mean_spread_text(mean, std)
        notes = [f"{n} {what}" for n, what in ((self.missing, "missing"),
                                               (self.nonfinite, "nan")) if n]
        if notes:
            out += f" (n={len(self.values)}; {', '.join(notes)})"
        return out

    def csv_fields(self, spread: str = "std") -> list[str]:
        if not self.values:
            return [self.text(), "", "0"]
        value = self.spread(spread)
        return [repr(self.mean), "" if value is None else repr(value), str(len(self.values))]


def mean_spread_text(mean: float, spread: float | None) -> str:
    """"12.34 ± 0.56": about 4 significant digits of the mean, the spread to the same place."""
    decimals = _decimals(mean)
    return f"{mean:.{decimals}f}" + (f" ± {spread:.{decimals}f}" if spread is not None else "")


def _decimals(x: float) -> int:
    """Decimals that show about 4 significant digits: 123.4, 12.34, 0.1234, 0.001234."""
    if x == 0 or not math.isfinite(x):
        return 3
    return int(min(6, max(0, 3 - math.floor(math.log10(abs(x))))))


def make_cell(runs: list[RunRecord], metric: str) -> Cell:
    values, missing, nonfinite = [], 0, 0
    for r in runs:
        if r.status != FINISHED:
            continue
        v = metric_values(r).get(metric)
        if v is None:
            missing += 1
        elif is_finite_number(v):
            values.append(float(v))
        else:
            nonfinite += 1
    status = Counter(r.status for r in runs)
    return Cell(values, missing, nonfinite, status[FAILED], status[NOT_STARTED])


# --- reference rows and published numbers ------------------------------------------------

RATIO_LABELS = {REAL: "floor", NOISE: "noise"}


def rankdata(values: list[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (scipy.stats.rankdata's default)."""
    a = np.asarray(values, dtype=float)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(1, len(a) + 1)
    for v in np.unique(a):
        tie = a == v
        ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation: Pearson's r of the average ranks (nan when a side is
    constant)."""
    if len(x) != len(y) or len(x) < 2:
        raise ValueError("spearman needs two equally long sequences of at least 2 values")
    rx, ry = rankdata(x) - (len(x) + 1) / 2, rankdata(y) - (len(y) + 1) / 2
    denom = math.sqrt(float((rx ** 2).sum() * (ry ** 2).sum()))
    return float((rx * ry).sum() / denom) if denom > 0 else math.nan


@dataclass
class PublishedRow:
    """A row of a paper's table: metric -> (mean, spread or None), printed under ours."""

    key: str
    label: str
    source: str
    dataset: str
    metrics: dict[str, tuple[float, float | None]]
    protocol: str  # how the paper's protocol differs from the runs'
    n: str  # the paper's number of trials ("" when it does not say)


@dataclass
class Published:
    """Numbers from a paper (a yaml under benchmarks/published/): one `value` per model row,
    shown in a column, and/or whole rows (`metrics`), shown under ours.

    Args:
        column: the column title, saying what the number is (e.g. "Lucic 2018 FID (Inception)").
        values: model (the table's `model` key) -> published value.
        labels: model -> the paper's name for it.
        sources: model -> citation.
        note: why the numbers are (not) comparable with ours.
        rows: the rows given with `metrics` (several numbers each).
    """

    column: str
    values: dict[str, float]
    labels: dict[str, str]
    sources: dict[str, str]
    note: str
    path: str
    rows: list[PublishedRow] = field(default_factory=list)


def _published_metric(value) -> tuple[float, float | None] | None:
    """A number, or [mean, spread]; None when it is neither."""
    if is_finite_number(value):
        return float(value), None
    if (isinstance(value, list) and len(value) == 2
            and all(is_finite_number(v) for v in value)):
        return float(value[0]), float(value[1])
    return None


def read_published(path: str | Path) -> Published:
    import yaml

    p = Path(path)
    fix = ("expected keys column, note and rows: {model: {value: number, label: text, "
           "source: text}} or {key: {metrics: {name: number or [mean, spread]}, dataset: name, "
           "label: text, source: text, protocol: text}}")
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"--published {p}: cannot read it ({type(err).__name__})") from None
    rows = data.get("rows") if isinstance(data, dict) else None

    def valid(r) -> bool:
        if not isinstance(r, dict):
            return False
        if "metrics" in r:
            m = r["metrics"]
            return isinstance(m, dict) and bool(m) and all(
                _published_metric(v) is not None for v in m.values())
        return is_finite_number(r.get("value"))

    if not isinstance(rows, dict) or not all(valid(r) for r in rows.values()):
        raise ConfigError(f"--published {p}: {fix}")
    column = {str(k): r for k, r in rows.items() if "metrics" not in r}
    table_rows = [PublishedRow(str(k), str(r.get("label", k)), str(r.get("source", "")),
                               str(r.get("dataset", "-")),
                               {str(m): _published_metric(v) for m, v in r["metrics"].items()},
                               " ".join(str(r.get("protocol", "")).split()),
                               str(r.get("n", "")))
                  for k, r in rows.items() if "metrics" in r]
    return Published(str(data.get("column", "published")),
                     {k: float(r["value"]) for k, r in column.items()},
                     {k: str(r.get("label", k)) for k, r in column.items()},
                     {k: str(r.get("source", "")) for k, r in column.items()},
                     " ".join(str(data.get("note", "")).split()), str(p), table_rows)


def published_pairs(table: Table) -> list[tuple[str, float, float]]:
    """(model, our mean, published value) for the rows that have both, in row order."""
    if table.published is None or table.ratio_metric not in table.metrics:
        return []
    k = table.metrics.index(table.ratio_metric)
    out = []
    for row in table.rows:
        model = table.model_of(row)
        mean = table.cells(row)[k].mean
        if mean is not None and model in table.published.values:
            out.append((model, mean, table.published.values[model]))
    return out


def reference_lines(table: Table) -> list[str]:
    """Markdown paragraphs: what the reference rows are, the published numbers' caveat and the
    rank correlation of the two orderings."""
    lines = []
    for ref in table.references:
        lines.append(f"- *{ref['name']}*: {ref['what']}, scored like the runs' samples.")
    if table.ratio_names:
        lines.append(f"- `{table.ratio_metric} / floor` and `/ noise`: a row's mean "
                     f"{table.ratio_metric} divided by the real-data and the uniform-noise "
                     f"{table.ratio_metric}.")
    pub = table.published
    if pub is not None and pub.rows:
        lines.append(f"- Rows marked *(published)* ({pub.path}) are a paper's numbers, not "
                     f"runs of this suite: {pub.note}")
        for r in pub.rows:
            lines.append(f"  - *{r.label}* on {r.dataset}: {r.source or 'source not given'}"
                         + (f"; protocol: {r.protocol}" if r.protocol else ""))
    if pub is not None and pub.values:
        lines.append(f"- `{pub.column}` ({pub.path}): {pub.note}")
        named = "; ".join(f"{m} = {pub.labels[m]}" + (f" ({pub.sources[m]})" if pub.sources[m]
                                                      else "") for m in pub.values)
        lines.append(f"- Published rows: {named}.")
        pairs = published_pairs(table)
        if len(pairs) >= 3:
            rho = spearman([p[1] for p in pairs], [p[2] for p in pairs])
            ours = " < ".join(m for m, _, _ in sorted(pairs, key=lambda p: (p[1], p[0])))
            theirs = " < ".join(m for m, _, _ in sorted(pairs, key=lambda p: (p[2], p[0])))
            lines.append(f"- Spearman rank correlation of our {table.ratio_metric} and the "
                         f"published one over the {len(pairs)} models in both: "
                         f"rho = {rho:.3f}. Ours: {ours}. Published: {theirs}.")
        else:
            lines.append(f"- Spearman rank correlation: not computed ({len(pairs)} models have "
                         "both numbers; it needs 3).")
    return ["", "## Reference rows", "", *lines] if lines else []


def protocol_mismatches(table: Table) -> list[str]:
    """Notes for protocol keys where a reference row differs from the runs (all agreeing)."""
    protos = [flat(r.metrics["protocol"]) for r in table.records
              if r.status == FINISHED and isinstance(r.metrics.get("protocol"), dict)]
    out = []
    for ref in table.references:
        theirs = flat(ref.get("protocol") or {})
        for key in sorted(theirs):
            values = {json.dumps(p.get(key), sort_keys=True) for p in protos if key in p}
            mine = json.dumps(theirs[key], sort_keys=True)
            if len(values) == 1 and mine not in values:
                out.append(f"reference *{ref['name']}*: protocol {key} = {_plain(mine)}, the "
                           f"runs' = {_plain(next(iter(values)))}")
    return out


# --- the table ---------------------------------------------------------------------------

@dataclass
class Row:
    key: tuple[str, ...]
    runs: list[RunRecord]

    @property
    def finished(self) -> list[RunRecord]:
        return [r for r in self.runs if r.status == FINISHED]


@dataclass
class Table:
    group_by: list[str]
    over: list[str]
    metrics: list[str]
    rows: list[Row]
    records: list[RunRecord]
    references: list[dict[str, Any]] = field(default_factory=list)  # rows of --reference files
    published: Published | None = None
    ratio_metric: str = "fid"
    spread: str = "std"

    def cells(self, row: Row) -> list[Cell]:
        return [make_cell(row.runs, m) for m in self.metrics]

    def model_of(self, row: Row) -> str:
        return row.key[self.group_by.index("model")] if "model" in self.group_by else row.key[0]

    def reference_value(self, name: str) -> float | None:
        for ref in self.references:
            v = ref["metrics"].get(self.ratio_metric)
            if ref["name"] == name and is_finite_number(v):
                return float(v)
        return None

    @property
    def ratio_names(self) -> list[str]:
        """The reference rows a model row is divided by (those present), e.g. real data."""
        if self.ratio_metric not in self.metrics:
            return []
        return [n for n in (REAL, NOISE) if self.reference_value(n) is not None]

    def extra_head(self) -> list[str]:
        head = [f"{self.ratio_metric} / {RATIO_LABELS[n]}" for n in self.ratio_names]
        if self.published is not None and self.published.values:
            head.append(self.published.column)
        return head

    def extra_cells(self, mean: float | None, model: str | None) -> list[str]:
        """Ratio cells of a row whose `ratio_metric` is `mean`, then its published value."""
        out = []
        for name in self.ratio_names:
            ref = self.reference_value(name)
            out.append("-" if mean is None or ref == 0 else f"{mean / ref:.{_decimals(mean / ref)}f}")
        if self.published is not None and self.published.values:
            value = self.published.values.get(model) if model is not None else None
            out.append("-" if value is None else f"{value:g}")
        return out


def build_table(records: list[RunRecord], group_by: list[str], over: list[str],
                include: list[str] | None, exclude: list[str],
                references: list[dict[str, Any]] | None = None,
                published: Published | None = None, ratio_metric: str = "fid",
                spread: str = "std") -> Table:
    groups: dict[tuple[str, ...], list[RunRecord]] = {}
    for r in records:
        groups.setdefault(tuple(group_value(r.config, k) for k in group_by), []).append(r)
    rows = [Row(k, sorted(v, key=lambda r: r.name)) for k, v in sorted(groups.items())]
    return Table(group_by, over, select_metrics(records, include, exclude), rows, records,
                 list(references or []), published, ratio_metric, spread)


def ratio_mean(table: Table, row: Row) -> float | None:
    if table.ratio_metric not in table.metrics:
        return None
    return table.cells(row)[table.metrics.index(table.ratio_metric)].mean


def reference_fields(table: Table, ref: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(row label cells, metric cells) of a reference row."""
    label = [f"*{ref['name']}*", *["-"] * (len(table.group_by) - 1)]
    if "dataset" in table.group_by:
        label[table.group_by.index("dataset")] = str((ref.get("protocol") or {}).get("dataset", "-"))
    values = []
    for m in table.metrics:
        v = flat(ref["metrics"], sep="/").get(m)
        values.append(f"{v:.{_decimals(v)}f}" if is_finite_number(v) else "-")
    return label, values


def published_fields(table: Table, prow: PublishedRow) -> tuple[list[str], list[str]]:
    """(row label cells, metric cells) of a published row; "-" for metrics it lacks."""
    label = [f"*{prow.label}* (published)", *["-"] * (len(table.group_by) - 1)]
    if "dataset" in table.group_by:
        label[table.group_by.index("dataset")] = prow.dataset
    values = []
    for m in table.metrics:
        v = prow.metrics.get(m)
        values.append("-" if v is None else mean_spread_text(*v))
    return label, values


def published_rows(table: Table) -> list[PublishedRow]:
    return table.published.rows if table.published is not None else []


def _join(values) -> str:
    return ", ".join(sorted({str(v) for v in values}, key=_natural))


def _natural(s: str):
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


def budget(config: dict[str, Any]) -> str:
    """A run's training budget: trainer.max_epochs, or "N steps" when only max_steps is set
    (Lightning's steps: optimizer steps of D and G together)."""
    epochs, steps = lookup(config, "trainer.max_epochs"), lookup(config, "trainer.max_steps")
    if epochs is None and is_number(steps) and steps > 0:
        return f"{steps} steps"
    return str(epochs)


def row_info(table: Table, row: Row) -> dict[str, str]:
    over = [_join(group_value(r.config, k) for r in row.runs) for k in table.over]
    epochs = _join(budget(r.config) for r in row.runs)
    not_done = Counter(r.status for r in row.runs if r.status != FINISHED)
    return {"epochs": epochs, "over": " / ".join(over), "n": str(len(row.finished)),
            "failed": ", ".join(f"{n} {s}" for s, n in sorted(not_done.items())) or "0"}


def notes(table: Table) -> list[str]:
    """Everything a reader must know to trust the numbers: failed runs, missing metrics,
    rows that mix different configs, repeated seeds."""
    out = []
    over_keys = [("data.name" if k == "dataset" else k) for k in table.over]
    for row in table.rows:
        label = " / ".join(row.key)
        for status, why in ((FAILED, "no done.json: crashed, interrupted or still running"),
                            (NOT_STARTED, "planned in sweep.json, no run dir")):
            members = [r for r in row.runs if r.status == status]
            names = [f"`{n}`" for n in dict.fromkeys(r.run for r in members)]
            if names:
                runs = f"run {names[0]}" if len(names) == 1 else f"runs {', '.join(names)}"
                size = f", {len(members)} ensemble members" if len(members) > len(names) else ""
                out.append(f"{label}: {runs} {status} ({why}{size})")
        for m in table.metrics:
            lacking = [r.name for r in row.finished if metric_values(r).get(m) is None]
            if lacking and len(lacking) < len(row.finished):
                out.append(f"{label}: `{m}` missing in " + ", ".join(f"`{n}`" for n in lacking))
        configs = [flat(r.config) for r in row.runs if r.config]
        # a planned run's config is rebuilt by today's code: a key only it has is a default
        # newer than the started runs' commit, not a difference between the runs
        started = [flat(r.config) for r in row.runs if r.config and r.status != NOT_STARTED]
        keys = sorted({k for c in (started or configs) for k in c})
        differ = [k for k in keys if not matches(k, IGNORED_CONFIG_KEYS) and k not in over_keys
                  and len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1]
        if differ:
            out.append(f"{label}: runs differ in {', '.join(differ)} (add them to --group-by?)")
        seen = Counter(tuple(group_value(r.config, k) for k in table.over) for r in row.runs)
        for value, n in sorted(seen.items()):
            if n > 1:
                out.append(f"{label}: {n} runs with {', '.join(table.over)} = "
                           f"{', '.join(value)}")
    return out


def _plain(value_json: str) -> str:
    """A JSON-encoded protocol value as text: strings unquoted."""
    try:
        value = json.loads(value_json)
    except json.JSONDecodeError:
        return value_json
    return value if isinstance(value, str) else value_json


def _runs(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")


def training_seconds(done: dict | None) -> tuple[float, bool] | None:
    """A finished run's training time and whether it covers every launch (done.json's
    train_seconds) or only the last (wall_seconds: records before train_seconds)."""
    for key, every in (("train_seconds", True), ("wall_seconds", False)):
        if done and is_finite_number(done.get(key)):
            return float(done[key]), every
    return None


def provenance(records: list[RunRecord]) -> list[str]:
    """Markdown lines: protocols from metrics.json, then git commits, devices, libraries,
    each counted over runs (an ensemble run once, not once per member)."""
    lines = ["## Protocol", ""]
    n_members = sum(1 for r in records if r.status != NOT_STARTED and r.member is not None)
    records = [r for r in distinct_runs(records) if r.status != NOT_STARTED]
    finished = [r for r in records if r.status == FINISHED]
    protos = [flat(r.metrics[k]) for r in finished for k in PROVENANCE_KEYS
              if isinstance(r.metrics.get(k), dict)]
    if not protos:
        lines.append("No protocol recorded in metrics.json by any finished run.")
    else:
        lines.append(f"From the metrics.json of {_runs(len(protos))} (of {len(finished)} that "
                     "finished); a key whose value is not the same in all of them lists each "
                     "value with its number of runs.")
        lines.append("")
        for key in sorted({k for p in protos for k in p}):
            counts = Counter(json.dumps(p[key], sort_keys=True) if key in p else "(absent)"
                             for p in protos)
            if len(counts) == 1:
                lines.append(f"- {key}: {_plain(next(iter(counts)))}")
            else:
                lines.append(f"- {key}: " + "; ".join(f"{_plain(v)} ({_runs(n)})"
                                                     for v, n in sorted(counts.items())))
    lines += ["", "## Environment (as recorded by the runs)", ""]
    envs = [r.environment for r in records if r.environment]
    if len(envs) < len(records):
        lines.append(f"- not recorded by {_runs(len(records) - len(envs))}")
    for key, title in (("git_commit", "git commit"), ("device", "device")):
        counts = Counter(str(e.get(key, "unknown")) for e in envs)
        lines.append(f"- {title}: " + "; ".join(f"{v} ({_runs(n)})" for v, n in sorted(counts.items())))
    libs = sorted({k for e in envs for k in (e.get("libraries") or {})})
    for lib in libs:
        counts = Counter(str((e.get("libraries") or {}).get(lib, "unknown")) for e in envs)
        if len(counts) == 1:
            lines.append(f"- {lib} {next(iter(counts))}")
        else:
            lines.append(f"- {lib}: " + "; ".join(f"{v} ({_runs(n)})" for v, n in sorted(counts.items())))
    timed = [t for t in (training_seconds(r.done) for r in records) if t is not None]
    if timed:
        secs = [t for t, _ in timed]
        last_only = sum(not every for _, every in timed)
        how = "a resumed run counts its last launch" if last_only == len(timed) else \
            "a resumed run counts all its launches" if not last_only else \
            (f"a resumed run counts all its launches, or only its last where its record "
             f"predates done.json's train_seconds ({_runs(last_only)})")
        lines.append(f"- training wall time: {sum(secs) / 60:.1f} min in total over "
                     f"{_runs(len(secs))} that finished ({sum(secs) / len(secs):.0f} s per run; "
                     f"{how})")
    if n_members:
        ensembles = sum(1 for r in records if r.member is not None)
        lines.append(f"- {ensembles} of the {_runs(len(records))} above train their seeds as "
                     f"one ensemble ({n_members} members in all; a member shares its run's "
                     "environment and wall time)")
    return lines


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(table: Table, title: str, command: str, sources: list[str],
                    figures: Sequence[str] = (), figure_notes: Sequence[str] = ()) -> str:
    head = [*table.group_by, "epochs", "/".join(table.over), "n", "failed", *table.metrics,
            *table.extra_head()]
    lines = [f"# {title}", "", f"Made by `{command}`.", ""]
    lines.append(f"Runs: {', '.join(sources)}. Each metric: mean ± {SPREADS[table.spread]} "
                 "over the runs of a row, with n = finished runs; "
                 f"'{'/'.join(table.over)}' lists their {', '.join(table.over)} values, "
                 "'epochs' the training budget (trainer.max_epochs, or trainer.max_steps when "
                 "only it is set: D and G optimizer steps together). A cell says `failed` when "
                 "no run of the row finished (crashed, interrupted or still running), `not "
                 "started` when none of its planned runs has started, `missing` when the "
                 "finished runs did not record the metric.")
    lines += ["", "| " + " | ".join(_md_escape(h) for h in head) + " |",
              "|" + "|".join("---" for _ in head) + "|"]
    for row in table.rows:
        info = row_info(table, row)
        cells = [c.text(table.spread) for c in table.cells(row)]
        values = [*row.key, info["epochs"], info["over"], info["n"], info["failed"], *cells,
                  *table.extra_cells(ratio_mean(table, row), table.model_of(row))]
        lines.append("| " + " | ".join(_md_escape(v) for v in values) + " |")
    for ref in table.references:
        label, cells = reference_fields(table, ref)
        mean = ref["metrics"].get(table.ratio_metric)
        values = [*label, "-", "-", "-", "-", *cells,
                  *table.extra_cells(float(mean) if is_finite_number(mean) else None, None)]
        lines.append("| " + " | ".join(_md_escape(v) for v in values) + " |")
    for prow in published_rows(table):
        label, cells = published_fields(table, prow)
        values = [*label, "-", "-", prow.n or "-", "-", *cells, *["-"] * len(table.extra_head())]
        lines.append("| " + " | ".join(_md_escape(v) for v in values) + " |")
    lines += reference_lines(table)
    if figures:  # the pictures of the table (`lit_gen.bench figures`), paths as given
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures]
        if figure_notes:
            lines += [""] + [f"- {n}" for n in figure_notes]
    found = notes(table) + protocol_mismatches(table)
    if found:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in found]
    lines += ["", *provenance(table.records)]
    return "\n".join(lines).rstrip() + "\n"


def render_csv(table: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = [*table.group_by, "epochs", "/".join(table.over), "n", "failed"]
    for m in table.metrics:
        head += [f"{m} mean", f"{m} {table.spread}", f"{m} n"]
    w.writerow([*head, *table.extra_head()])
    for row in table.rows:
        info = row_info(table, row)
        fields = [*row.key, info["epochs"], info["over"], info["n"], info["failed"]]
        for cell in table.cells(row):
            fields += cell.csv_fields(table.spread)
        w.writerow([*fields, *table.extra_cells(ratio_mean(table, row), table.model_of(row))])
    for ref in table.references:
        label, _ = reference_fields(table, ref)
        fields = [*label, "", "", "", ""]
        for m in table.metrics:
            v = flat(ref["metrics"], sep="/").get(m)
            fields += [repr(float(v)), "", "1"] if is_finite_number(v) else ["", "", "0"]
        mean = ref["metrics"].get(table.ratio_metric)
        w.writerow([*fields, *table.extra_cells(float(mean) if is_finite_number(mean) else None,
                                                None)])
    for prow in published_rows(table):
        label, _ = published_fields(table, prow)
        fields = [*label, "", "", prow.n, ""]
        for m in table.metrics:
            v = prow.metrics.get(m)
            fields += ["", "", "0"] if v is None else [
                repr(v[0]), "" if v[1] is None else repr(v[1]), prow.n]
        w.writerow([*fields, *[""] * len(table.extra_head())])
    return buf.getvalue()


def _keys(text: str) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise ConfigError(f"expected comma-separated keys, got '{text}'")
    return keys


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lit_gen.bench",
        description="Reduce finished runs to a benchmark table (markdown + CSV).",
        epilog="Other modes: python -m lit_gen.bench MODE --help (see lit_gen/bench/__init__.py).")
    parser.add_argument("sources", nargs="+", metavar="RUNS_DIR_OR_SWEEP",
                        help="run dirs / sweep roots, or a W&B sweep as entity/project/sweep_id")
    parser.add_argument("--group-by", default=DEFAULT_GROUP_BY,
                        help="row keys: model (the variant), dataset, or dotted config keys "
                             f"(default {DEFAULT_GROUP_BY})")
    parser.add_argument("--over", default=DEFAULT_OVER,
                        help=f"what the runs of a row repeat over (default {DEFAULT_OVER})")
    parser.add_argument("--metrics", default=None,
                        help="comma-separated metric names or globs, in column order "
                             "(default: every scalar in metrics.json but --exclude)")
    parser.add_argument("--exclude", default=",".join(DEFAULT_EXCLUDE),
                        help="globs left out when --metrics is not given")
    parser.add_argument("--out", default=None,
                        help="write OUT.md and OUT.csv (default: markdown to stdout)")
    parser.add_argument("--title", default=None, help="table title (default: the --out name)")
    parser.add_argument("--figure", action="append", default=[], metavar="PATH",
                        help="an image shown under the table, its path relative to the "
                             "markdown file (e.g. the gallery and curves of `bench figures`)")
    parser.add_argument("--scatter", action="store_true",
                        help="toy runs: also draw OUT_scatter_<dataset>.png (one panel per row, "
                             "its seed-0 run or ensemble member, from its checkpoint or kept "
                             "points) and show them under the table; rows without a panel are "
                             "named there")
    parser.add_argument("--reference", action="append", default=[], metavar="FILE.json",
                        help="reference rows (real-vs-real floor, uniform noise) written by "
                             "`python -m lit_gen.bench reference`")
    parser.add_argument("--published", default=None, metavar="FILE.yaml",
                        help="published numbers per model (benchmarks/published/*.yaml), shown "
                             "in a column with the rank correlation to ours")
    parser.add_argument("--spread", default="std", choices=sorted(SPREADS),
                        help="after ±: std (sample std over the runs) or se (standard error of "
                             "the mean); published rows keep the paper's own")
    parser.add_argument("--ratio-metric", default="fid",
                        help="the metric of the ratio columns and the rank correlation (fid)")
    return parser.parse_args(argv)


@cli_main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.scatter and not args.out:
        raise ConfigError("--scatter writes OUT_scatter_<dataset>.png next to the table: "
                          "give --out")
    records = [r for source in args.sources for r in load_records(source)]
    include = _keys(args.metrics) if args.metrics else None
    references = [row for path in args.reference for row in read_reference(path)["rows"]]
    published = read_published(args.published) if args.published else None
    table = build_table(records, _keys(args.group_by), _keys(args.over), include,
                        _keys(args.exclude) if args.exclude else [], references, published,
                        args.ratio_metric, args.spread)
    if not table.metrics:
        raise ConfigError("no metrics to tabulate: the finished runs recorded none outside "
                          "--exclude; name them with --metrics")
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix in (".md", ".csv"):
        out = out.with_suffix("")
    title = args.title or (out.name if out else "Benchmark")
    command = "python -m lit_gen.bench " + shlex.join(argv)
    figures, figure_notes = list(args.figure), []
    if args.scatter:
        out.parent.mkdir(parents=True, exist_ok=True)
        paths, figure_notes = draw_toy_scatter(records, table.group_by, out)
        figures += [p.name for p in paths if p.name not in figures]
    markdown = render_markdown(table, title, command, args.sources, figures, figure_notes)
    if out is None:
        sys.stdout.write(markdown)
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.md").write_text(markdown)
    Path(f"{out}.csv").write_text(render_csv(table))
    n_failed = sum(r.status != FINISHED for r in records)
    print(f"wrote {out}.md and {out}.csv: {len(table.rows)} rows from {len(records)} runs "
          f"({n_failed} not finished)")
    return 0


__all__ = ["FAILED", "NOT_STARTED", "build_table", "main", "read_published", "render_csv",
           "render_markdown", "spearman"]
