"""Benchmark tables from hand-written run dirs: exact statistics, failures shown, stable bytes."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from lit_gen import bench
from lit_gen.bench import table as bench_table
from lit_gen.bench.records import FAILED, FINISHED, local_records, record_from_wandb_run

P_IMAGE = {"feature_extractor": "classifier", "n_generated": 2000, "fid": {"n_real": 1617}}
P_TOY = {"toy": {"n_generated": 2500, "modes": 8}}
ENV_A = {"git_commit": "aaa", "device": "cpu: test x 1",
         "libraries": {"torch": "2.15.0", "python": "3.11.7"}}
ENV_B = {**ENV_A, "git_commit": "bbb"}


def make_run(root: Path, experiment: str, dataset: str, seed: int, metrics: dict | None,
             done: bool = True, env: dict | None = ENV_A, lr: float = 2e-4) -> Path:
    d = root / f"{experiment},seed={seed}"
    d.mkdir(parents=True)
    config = {"seed": seed, "experiment": experiment, "data": {"name": dataset, "root": str(d)},
              "model": {"name": "gan", "g_optim": {"lr": lr}}, "trainer": {"max_epochs": 5},
              "run": {"dir": str(d)}}
    (d / "config.yaml").write_text(yaml.safe_dump(config))
    if metrics is not None:
        (d / "metrics.json").write_text(json.dumps(metrics))
    if done:
        (d / "done.json").write_text(json.dumps({"epoch": 5, "g_step": 100, "wall_seconds": 30.0}))
    if env is not None:
        (d / "environment.json").write_text(json.dumps(env))
    return d


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    for seed, fid, isc in ((0, 10.0, 2.0), (1, 12.0, 2.5), (2, 17.0, 3.0)):
        make_run(root, "dcgan_mnist", "mnist", seed,
                 {"fid": fid, "isc_mean": isc, "train/g_loss": 0.7, "epoch": 5,
                  "protocol": P_IMAGE}, env=ENV_B if seed == 2 else ENV_A,
                 lr=1e-3 if seed == 2 else 2e-4)
    make_run(root, "wgan_mnist", "mnist", 0, {"fid": 20.0, "isc_mean": 1.5, "protocol": P_IMAGE})
    make_run(root, "wgan_mnist", "mnist", 1, {"isc_mean": 1.7, "protocol": P_IMAGE})
    # crashed mid-run: metrics.json of an unfinished run must not count
    make_run(root, "wgan_mnist", "mnist", 2, {"fid": 99.0, "isc_mean": 9.9}, done=False)
    make_run(root, "lsgan_mnist", "mnist", 0, {"fid": 50.0}, done=False)
    make_run(root, "lsgan_mnist", "mnist", 1, None, done=False, env=None)
    make_run(root, "gan_ring2d", "ring2d", 0, {"modes_captured": 8, "protocol": P_TOY})
    make_run(root, "gan_ring2d", "ring2d", 1, {"modes_captured": 6, "protocol": P_TOY})
    return root


def table_files(runs: Path, out: Path, *args: str) -> tuple[str, list[dict[str, str]]]:
    assert bench.main([str(runs), "--out", str(out), *args]) == 0
    md = out.with_suffix(".md").read_text()
    rows = list(csv.DictReader(io.StringIO(out.with_suffix(".csv").read_text())))
    return md, rows


def row_of(rows, model, dataset):
    (row,) = [r for r in rows if r["model"] == model and r["dataset"] == dataset]
    return row


def md_row(md: str, model: str, dataset: str) -> list[str]:
    (line,) = [ln for ln in md.splitlines() if ln.startswith(f"| {model} | {dataset} |")]
    return [c.strip() for c in line.strip("|").split("|")]


def test_mean_std_over_seeds_are_exact(runs, tmp_path):
    md, rows = table_files(runs, tmp_path / "out" / "table")
    dc = row_of(rows, "dcgan", "mnist")
    # by hand: mean(10, 12, 17) = 13; sample std = sqrt((9 + 1 + 16) / 2) = sqrt(13)
    assert float(dc["fid mean"]) == pytest.approx(13.0, rel=1e-12)
    assert float(dc["fid std"]) == pytest.approx(math.sqrt(13.0), rel=1e-12)
    assert float(dc["fid std"]) == pytest.approx(np.std([10.0, 12.0, 17.0], ddof=1), rel=1e-12)
    assert float(dc["isc_mean mean"]) == pytest.approx(2.5, rel=1e-12)
    assert float(dc["isc_mean std"]) == pytest.approx(0.5, rel=1e-12)
    assert (dc["fid n"], dc["n"], dc["failed"], dc["seed"], dc["epochs"]) == ("3", "3", "0",
                                                                           "0, 1, 2", "5")
    cells = md_row(md, "dcgan", "mnist")
    assert cells[6:] == ["13.00 ± 3.61", "2.500 ± 0.500", "missing"]
    # the default columns: scalars outside the exclusions (train/*, epoch, ...), sorted
    header = [ln for ln in md.splitlines() if ln.startswith("| model |")][0]
    assert header == ("| model | dataset | epochs | seed | n | failed | fid | isc_mean | "
                      "modes_captured |")
    assert [(r["model"], r["dataset"]) for r in rows] == [
        ("dcgan", "mnist"), ("gan", "ring2d"), ("lsgan", "mnist"), ("wgan", "mnist")]


def test_failed_runs_and_missing_metrics_are_shown_not_dropped(runs, tmp_path):
    md, rows = table_files(runs, tmp_path / "t", "--metrics", "fid,isc_mean,modes_captured")
    w = row_of(rows, "wgan", "mnist")
    # the crashed seed 2 (fid 99) is not averaged in; seed 1 finished without a fid
    assert (w["n"], w["failed"], w["fid mean"], w["fid std"], w["fid n"]) == \
        ("2", "1 failed", "20.0", "", "1")
    assert float(w["isc_mean mean"]) == pytest.approx(1.6, rel=1e-12)
    assert float(w["isc_mean std"]) == pytest.approx(math.sqrt(0.02), rel=1e-12)
    assert md_row(md, "wgan", "mnist")[6:8] == ["20.00 (n=1; 1 missing)", "1.600 ± 0.141"]
    ls = row_of(rows, "lsgan", "mnist")
    assert (ls["n"], ls["failed"], ls["fid mean"], ls["fid n"]) == ("0", "2 failed", "failed", "0")
    assert md_row(md, "lsgan", "mnist")[6:] == ["failed", "failed", "failed"]
    gan = row_of(rows, "gan", "ring2d")
    assert gan["fid mean"] == "missing" and float(gan["modes_captured mean"]) == 7.0
    assert float(gan["modes_captured std"]) == pytest.approx(math.sqrt(2.0), rel=1e-12)
    assert "wgan / mnist: run `wgan_mnist,seed=2` failed (no done.json" in md
    assert "lsgan / mnist: runs `lsgan_mnist,seed=0`, `lsgan_mnist,seed=1` failed (no done.json" in md
    assert "wgan / mnist: `fid` missing in `wgan_mnist,seed=1`" in md
    # a row whose runs differ in more than the seed says so
    assert "dcgan / mnist: runs differ in model.g_optim.lr" in md
    assert "wgan / mnist: runs differ" not in md


def test_provenance_protocol_and_environment(runs, tmp_path):
    md, _ = table_files(runs, tmp_path / "t")
    assert "From the metrics.json of 7 runs (of 7 that finished)" in md
    # the image and toy protocols differ: each key lists its values with their run counts
    assert "- feature_extractor: classifier (5 runs); (absent) (2 runs)\n" in md
    assert "- fid.n_real: (absent) (2 runs); 1617 (5 runs)\n" in md
    assert "- toy.modes: (absent) (5 runs); 8 (2 runs)\n" in md
    same = bench_table.provenance([r for r in local_records(runs) if r.name.startswith("dcgan")])
    assert "- feature_extractor: classifier" in same and "- n_generated: 2000" in same
    assert "- fid.n_real: 1617" in same and not any("toy" in line for line in same)
    # environment.json of every run (the crashed ones too); lsgan seed 1 has none
    assert "- git commit: aaa (8 runs); bbb (1 run)" in md
    assert "- not recorded by 1 run\n" in md
    assert "- torch 2.15.0" in md
    assert "- training wall time: 3.5 min in total over 7 runs that finished (30 s per run" in md
    assert "\n\n\n" not in md


def test_rerun_is_byte_identical(runs, tmp_path):
    out = tmp_path / "t"
    table_files(runs, out)
    first = (out.with_suffix(".md").read_bytes(), out.with_suffix(".csv").read_bytes())
    for d in runs.iterdir():  # file times and directory order must not matter
        (d / "config.yaml").touch()
    table_files(runs, out)
    assert (out.with_suffix(".md").read_bytes(), out.with_suffix(".csv").read_bytes()) == first
    records = local_records(runs)
    table = bench_table.build_table(records[::-1], ["model", "dataset"], ["seed"], None,
                                    list(bench_table.DEFAULT_EXCLUDE))
    again = bench_table.build_table(records, ["model", "dataset"], ["seed"], None,
                                    list(bench_table.DEFAULT_EXCLUDE))
    assert bench_table.render_csv(table) == bench_table.render_csv(again)
    assert bench_table.render_markdown(table, "t", "c", ["r"]) == \
        bench_table.render_markdown(again, "t", "c", ["r"])


def test_group_by_config_key_and_metric_globs(runs, tmp_path):
    md, rows = table_files(runs, tmp_path / "t", "--group-by", "dataset,model.g_optim.lr",
                           "--metrics", "isc_*")
    assert [(r["dataset"], r["model.g_optim.lr"]) for r in rows] == [
        ("mnist", "0.0002"), ("mnist", "0.001"), ("ring2d", "0.0002")]
    assert rows[1]["isc_mean mean"] == "3.0" and rows[1]["n"] == "1"
    assert list(rows[0])[-3:] == ["isc_mean mean", "isc_mean std", "isc_mean n"]
    # mnist at lr 2e-4 mixes dcgan, wgan and lsgan runs: flagged
    assert "mnist / 0.0002: runs differ in experiment" not in md  # experiment is ignored
    assert "3 runs with seed = 0" in md


def test_planned_runs_without_a_run_dir_count_as_not_started(runs, tmp_path):
    root = Path(__file__).resolve().parents[2]
    state = {"command": ["python", "-m", "lit_gen.fit", "--config",
                         str(root / "conf/experiment/gan_ring2d.yaml"), "${args_no_hyphens}"],
             "overrides": ["trainer.max_epochs=5"],
             "runs": [{"name": "gan_ring2d,seed=0", "params": {"seed": 0}},
                      {"name": "gan_ring2d,seed=2", "params": {"seed": 2}}]}
    (runs / "sweep.json").write_text(json.dumps(state))
    md, rows = table_files(runs, tmp_path / "t")
    gan = row_of(rows, "gan", "ring2d")
    assert (gan["n"], gan["failed"], gan["seed"]) == ("2", "1 not started", "0, 1, 2")
    assert "run `gan_ring2d,seed=2` not started (planned in sweep.json" in md
    # the planned run's config comes from today's conf/: a real difference from the finished
    # runs is named (the experiment's lr, not the runs' 2e-4); defaults the finished runs'
    # configs lack are not differences
    assert "- gan / ring2d: runs differ in model.g_optim.lr (add them to --group-by?)\n" in md


def test_planned_ensemble_runs_count_their_members_and_seeds(runs, tmp_path):
    # two planned 5-member halves of one row: 10 seeds not started, one note naming the
    # runs, no "differ in seeds" / "runs with seed = 0" notes
    root = Path(__file__).resolve().parents[2]
    state = {"command": ["python", "-m", "lit_gen.fit", "--config",
                         str(root / "conf/experiment/gan_grid2d.yaml"), "${args_no_hyphens}"],
             "runs": [{"name": f"gan_grid2d,seeds={k}", "params": {"seeds": list(seeds)}}
                      for k, seeds in ((0, range(5)), (1, range(5, 10)))]}
    (runs / "sweep.json").write_text(json.dumps(state))
    md, rows = table_files(runs, tmp_path / "t")
    grid = row_of(rows, "gan", "grid2d")
    assert (grid["n"], grid["failed"], grid["seed"]) == (
        "0", "10 not started", "0, 1, 2, 3, 4, 5, 6, 7, 8, 9")
    assert ("gan / grid2d: runs `gan_grid2d,seeds=0`, `gan_grid2d,seeds=1` not started "
            "(planned in sweep.json, no run dir, 10 ensemble members)") in md
    grid_notes = [line for line in md.splitlines() if line.startswith("- gan / grid2d:")]
    assert len(grid_notes) == 1 and "differ" not in grid_notes[0]


def test_provenance_counts_an_ensemble_run_once(runs, tmp_path):
    # a finished 3-member ensemble (60 s) beside the fixture's 10 solo runs (7 finished, 30 s
    # each) and a planned 5-member run: the members share the run's environment.json and
    # done.json, which count once; the planned run has neither and counts nowhere
    d = make_run(runs, "gan_grid2d", "grid2d", 0, None, env=ENV_B)
    config = yaml.safe_load((d / "config.yaml").read_text())
    (d / "config.yaml").write_text(yaml.safe_dump({**config, "seeds": [3, 4, 5]}))
    (d / "done.json").write_text(json.dumps({"epoch": 5, "g_step": 100, "wall_seconds": 60.0}))
    (d / "metrics.json").write_text(json.dumps({"protocol": P_TOY, "members": [
        {"seed": s, "modes_captured": m} for s, m in ((3, 20), (4, 22), (5, 25))]}))
    root = Path(__file__).resolve().parents[2]
    (runs / "sweep.json").write_text(json.dumps({
        "command": ["python", "-m", "lit_gen.fit", "--config",
                    str(root / "conf/experiment/gan_grid2d.yaml"), "${args_no_hyphens}"],
        "runs": [{"name": "gan_grid2d,later", "params": {"seeds": [5, 6, 7, 8, 9]}}]}))
    md, rows = table_files(runs, tmp_path / "t")
    grid = row_of(rows, "gan", "grid2d")
    assert (grid["n"], grid["failed"]) == ("3", "5 not started")  # the table counts members
    assert "From the metrics.json of 8 runs (of 8 that finished)" in md
    assert "- git commit: aaa (8 runs); bbb (2 runs)" in md
    assert "- not recorded by 1 run\n" in md
    # (7 x 30 s + 60 s) / 8 runs
    assert "- training wall time: 4.5 min in total over 8 runs that finished (34 s per run" in md
    assert ("- 1 of the 11 runs above train their seeds as one ensemble (3 members in all; "
            "a member shares its run's environment and wall time)") in md


def test_provenance_counts_every_launch_where_the_record_has_train_seconds(runs, tmp_path):
    # the fixture's 7 finished runs (30 s each, records without train_seconds); one of them
    # was resumed: 30 s in its last launch, 90 s over all of them
    d = runs / "dcgan_mnist,seed=0"
    (d / "done.json").write_text(json.dumps({"epoch": 5, "g_step": 100, "wall_seconds": 30.0,
                                             "train_seconds": 90.0}))
    md, _ = table_files(runs, tmp_path / "t")
    # (6 x 30 s + 90 s) / 7 runs = 4.5 min, 39 s per run
    assert ("- training wall time: 4.5 min in total over 7 runs that finished (39 s per run; "
            "a resumed run counts all its launches, or only its last where its record "
            "predates done.json's train_seconds (6 runs))") in md
    for other in runs.glob("*/done.json"):
        done = json.loads(other.read_text())
        other.write_text(json.dumps({**done, "train_seconds": done.get("train_seconds", 30.0)}))
    md, _ = table_files(runs, tmp_path / "t")
    assert "(39 s per run; a resumed run counts all its launches)" in md


def test_ensemble_membership_is_a_field_not_read_from_the_run_name():
    from lit_gen.bench.records import distinct_runs, run_records

    # a plain run whose dir happens to be named like a member is a plain run of its own
    plain = run_records("ablation/member1", {"seed": 4}, {}, "finished")
    ens = run_records("ablation", {"seed": 0, "seeds": [7, 9]}, {"members": [
        {"seed": 7, "modes_captured": 3}, {"seed": 9, "modes_captured": 5}]}, "finished")
    assert [(r.name, r.run, r.member) for r in plain] == [("ablation/member1", "ablation/member1", None)]
    assert [(r.name, r.run, r.member, r.config["seed"], r.metrics["modes_captured"])
            for r in ens] == [("ablation/member0", "ablation", 0, 7, 3),
                              ("ablation/member1", "ablation", 1, 9, 5)]
    assert len(distinct_runs(plain + ens)) == 2


def test_metric_cells_of_a_row_with_no_started_run_say_not_started(runs, tmp_path):
    root = Path(__file__).resolve().parents[2]
    state = {"command": ["python", "-m", "lit_gen.fit", "--config",
                         str(root / ""), "${args_no_hyphens}"],
             "runs": []}
    for exp in ("gan_grid2d", "lsgan_mnist"):  # nothing started / one failed run exists
        state["command"][4] = str(root / f"conf/experiment/{exp}.yaml")
        state["runs"] = [{"name": f"{exp},seed=7", "params": {"seed": 7}}]
        (runs / "sweep.json").write_text(json.dumps(state))
        md, rows = table_files(runs, tmp_path / exp, "--metrics", "fid")
        model, dataset = exp.split("_")
        row = row_of(rows, model, dataset)
        expected = ("not started", "1 not started") if exp == "gan_grid2d" else \
            ("failed", "2 failed, 1 not started")
        assert (row["fid mean"], row["failed"]) == expected
        assert md_row(md, model, dataset)[-1] == expected[0]


def test_wandb_runs_become_records():
    class FakeRun:  # the attributes of wandb.apis.public.Run that bench reads
        name = "glad-sun-3"
        config = {"experiment": "wgan_gp_mnist", "data": {"name": "mnist"}, "seed": 1,
                  "model": {"name": "gan", "g_optim": {"lr": 1e-4}}, "model.g_optim.lr": 3e-4}
        summary = {"fid": 12.5, "_step": 40, "_runtime": 100.0}
        state = "crashed"
        metadata = {"gpu": "NVIDIA H100", "gpu_count": 2, "git": {"commit": "abc"},
                    "python": "3.11.7"}

    rec = record_from_wandb_run(FakeRun())
    assert rec.status == FAILED and rec.metrics == {"fid": 12.5}
    assert rec.config["model"]["g_optim"]["lr"] == 3e-4  # the sweep's value wins
    assert bench_table.group_value(rec.config, "model") == "wgan_gp"
    assert rec.environment["device"] == "NVIDIA H100 x 2"
    FakeRun.state = "finished"
    assert record_from_wandb_run(FakeRun()).status == FINISHED


def test_modes_plug_in_and_table_is_the_default(runs, tmp_path, monkeypatch, capsys):
    (tmp_path / "fake_speed_mode.py").write_text(
        "CALLS = []\ndef main(argv):\n    CALLS.append(list(argv))\n    return 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(bench.MODES, "speed", "fake_speed_mode")
    assert bench.main(["speed", "--steps", "3"]) == 7
    assert sys.modules["fake_speed_mode"].CALLS == [["--steps", "3"]]
    assert bench.main(["table", str(runs)]) == 0
    explicit = capsys.readouterr().out
    assert bench.main([str(runs)]) == 0
    assert capsys.readouterr().out == explicit and "| dcgan | mnist |" in explicit


def test_bad_input_exits_2(tmp_path, runs, capsys):
    assert bench.main([str(tmp_path / "nope")]) == 2
    assert "no such runs directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert bench.main([str(tmp_path / "empty")]) == 2
    assert "holds no run dirs" in capsys.readouterr().err
    assert bench.main([str(runs), "--exclude", "*"]) == 2
    assert "no metrics to tabulate" in capsys.readouterr().err


def test_wandb_summary_carries_metrics_json(tmp_path, monkeypatch):
    """What `bench ENTITY/PROJECT/SWEEP_ID` reads: fit copies metrics.json (numbers and the
    protocol) into the wandb run's summary (a real offline run)."""
    from lightning.pytorch.loggers import WandbLogger

    from lit_gen.run.loggers import sync_wandb_summary

    monkeypatch.setenv("WANDB_MODE", "offline")
    logger = WandbLogger(project="lit_gen_test", save_dir=str(tmp_path), offline=True,
                         mode="offline")
    try:
        sync_wandb_summary([logger], {"fid": 3.5, "protocol": P_IMAGE})
        summary = logger.experiment.summary
        assert summary["fid"] == 3.5
        assert summary["protocol"]["fid"]["n_real"] == 1617
        assert summary["protocol"]["feature_extractor"] == "classifier"
    finally:
        logger.experiment.finish()


# --- reference rows, published numbers, rank correlation ------------------------------------

def test_spearman_and_ranks_match_scipy():
    from scipy import stats

    rng = np.random.RandomState(0)
    for x, y in (([29.6, 26.5, 30.7, 21.5, 24.5, 27.7, 22.9, 43.6],
                  [31.0, 12.0, 40.0, 180.0, 15.0, 22.0, 90.0, 60.0]),
                 ([1, 2, 2, 3, 5, 5, 5], [7, 1, 3, 3, 2, 9, 4]),  # ties on both sides
                 (list(rng.rand(20)), list(rng.rand(20)))):
        assert bench_table.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
        assert bench_table.rankdata(x).tolist() == pytest.approx(stats.rankdata(x).tolist())
    assert bench_table.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert math.isnan(bench_table.spearman([1, 1, 1], [1, 2, 3]))


REF_PROTOCOL = {**P_IMAGE, "dataset": "mnist"}


def write_reference(path: Path, real_fid: float, noise_fid: float, protocol=REF_PROTOCOL) -> Path:
    rows = [{"name": name, "what": f"{name} test", "metrics": {"fid": fid, "isc_mean": 1.0},
             "protocol": protocol}
            for name, fid in (("real data", real_fid), ("uniform noise", noise_fid))]
    path.write_text(json.dumps({"format": "lit_gen.reference/1", "dataset": "mnist",
                                "command": "test", "rows": rows}))
    return path


def test_reference_rows_ratios_and_published_rank_correlation(tmp_path):
    from scipy import stats

    root = tmp_path / "runs"
    ours = {"dcgan": (10.0, 14.0), "wgan": (40.0, 44.0), "lsgan": (20.0, 30.0),
            "began": (100.0, 120.0)}
    for model, fids in ours.items():
        for seed, fid in enumerate(fids):
            make_run(root, f"{model}_mnist", "mnist", seed, {"fid": fid, "protocol": P_IMAGE})
    ref = write_reference(tmp_path / "ref.json", real_fid=2.0, noise_fid=400.0)
    pub = tmp_path / "pub.yaml"
    published = {"dcgan": 26.5, "wgan": 21.5, "lsgan": 30.7, "began": 22.9, "vae": 43.6}
    pub.write_text(yaml.safe_dump({"column": "paper FID", "note": "Inception, not comparable.",
                                   "rows": {k: {"value": v, "label": k.upper()}
                                            for k, v in published.items()}}))
    md, rows = table_files(root, tmp_path / "t", "--metrics", "fid", "--reference", str(ref),
                           "--published", str(pub))
    cells = md_row(md, "lsgan", "mnist")  # mean 25
    assert cells[-4:] == ["25.00 ± 7.07", "12.50", "0.06250", "30.7"]
    assert md_row(md, "*real data*", "mnist")[-4:] == ["2.000", "1.000", "0.005000", "-"]
    assert md_row(md, "*uniform noise*", "mnist")[-4:] == ["400.0", "200.0", "1.000", "-"]
    means = [float(np.mean(ours[m])) for m in sorted(ours)]
    rho = stats.spearmanr(means, [published[m] for m in sorted(ours)])[0]
    assert f"over the 4 models in both: rho = {rho:.3f}" in md
    assert "Ours: dcgan < lsgan < wgan < began. Published: wgan < began < dcgan < lsgan." in md
    assert "Inception, not comparable." in md
    row = row_of(rows, "dcgan", "mnist")
    assert float(row["fid / floor"]) == pytest.approx(6.0)
    assert float(row["fid / noise"]) == pytest.approx(0.03)
    assert row["paper FID"] == "26.5"
    (ref_csv,) = [r for r in rows if r["model"] == "*uniform noise*"]
    assert float(ref_csv["fid mean"]) == 400.0 and ref_csv["fid n"] == "1"
    # the same inputs give the same bytes
    md2, _ = table_files(root, tmp_path / "t2", "--metrics", "fid", "--reference", str(ref),
                         "--published", str(pub))
    assert md2.replace("t2", "t") == md


def test_ratio_to_the_floor_at_the_references_sample_size(tmp_path):
    # runs evaluated at n = 2000 also record FID on 300 of their samples (fd_inf's fid_n300);
    # a floor of 300 real images is divided into that, not into the n = 2000 FID
    root = tmp_path / "runs"
    for seed, (fid, fid300) in enumerate(((5.0, 9.0), (7.0, 11.0))):
        make_run(root, "vae_mnist", "mnist", seed, {"fid": fid, "fid_n300": fid300,
                                                    "protocol": P_IMAGE})
    ref = write_reference(tmp_path / "ref.json", real_fid=4.0, noise_fid=200.0)
    data = json.loads(ref.read_text())
    for row in data["rows"]:
        row["metrics"]["fid_n300"] = row["metrics"]["fid"]
    ref.write_text(json.dumps(data))
    md, rows = table_files(root, tmp_path / "t", "--metrics", "fid,fid_n300", "--reference",
                           str(ref), "--ratio-metric", "fid_n300")
    row = row_of(rows, "vae", "mnist")
    assert float(row["fid_n300 / floor"]) == pytest.approx(2.5)  # 10 / 4
    assert float(row["fid_n300 / noise"]) == pytest.approx(0.05)
    assert md_row(md, "vae", "mnist")[-4:] == ["6.000 ± 1.414", "10.00 ± 1.41", "2.500", "0.05000"]


def test_reference_with_another_protocol_is_noted(runs, tmp_path):
    ref = write_reference(tmp_path / "ref.json", 2.0, 400.0,
                          protocol={**P_IMAGE, "n_generated": 500})
    md, _ = table_files(runs, tmp_path / "t", "--metrics", "fid", "--reference", str(ref))
    assert "reference *real data*: protocol n_generated = 500, the runs' = 2000" in md


def test_fewer_than_three_published_models_give_no_correlation(runs, tmp_path):
    pub = tmp_path / "pub.yaml"
    pub.write_text(yaml.safe_dump({"rows": {"dcgan": {"value": 1.0}, "wgan": {"value": 2.0}}}))
    md, _ = table_files(runs, tmp_path / "t", "--metrics", "fid", "--published", str(pub))
    assert "not computed (2 models have both numbers; it needs 3)" in md


def test_bad_reference_and_published_files_exit_2(runs, tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{}")
    assert bench.main([str(runs), "--reference", str(tmp_path / "bad.json")]) == 2
    assert "not a readable reference file" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("rows: {dcgan: {value: fast}}")
    assert bench.main([str(runs), "--published", str(tmp_path / "bad.yaml")]) == 2
    assert "expected keys column, note and rows" in capsys.readouterr().err


def test_committed_published_rows_are_the_papers_numbers():
    root = Path(__file__).resolve().parents[2]
    pub = bench_table.read_published(root / "benchmarks/published/lucic2018_fashion_mnist.yaml")
    assert pub.values == {"gan_mm": 29.6, "dcgan": 26.5, "lsgan": 30.7, "wgan": 21.5,
                          "wgan_gp": 24.5, "dragan": 27.7, "began": 22.9, "vae": 43.6}
    for model in pub.values:  # every published row names an experiment of ours
        assert (root / "conf/experiment" / f"{model}_fashion_mnist.yaml").is_file(), model


def test_standard_error_spread_is_std_over_sqrt_n(runs, tmp_path):
    md, rows = table_files(runs, tmp_path / "t", "--metrics", "fid", "--spread", "se")
    fids = [10.0, 12.0, 17.0]
    se = float(np.std(fids, ddof=1)) / math.sqrt(3)
    assert se == pytest.approx(2.0817, abs=1e-4)  # by hand: sample std sqrt(13), over sqrt(3)
    assert md_row(md, "dcgan", "mnist")[-1] == f"13.00 ± {se:.2f}"
    row = row_of(rows, "dcgan", "mnist")
    assert float(row["fid se"]) == pytest.approx(se) and "fid std" not in row
    assert "standard error of the mean" in md


def test_budget_names_max_steps_when_epochs_are_not_set(tmp_path):
    d = make_run(tmp_path / "runs", "gan_ring2d", "ring2d", 0,
                 {"modes_captured": 8, "protocol": P_TOY})
    config = yaml.safe_load((d / "config.yaml").read_text())
    config["trainer"] = {"max_epochs": None, "max_steps": 50000}
    (d / "config.yaml").write_text(yaml.safe_dump(config))
    md, _ = table_files(tmp_path / "runs", tmp_path / "t", "--metrics", "modes_captured")
    assert md_row(md, "gan", "ring2d")[2] == "50000 steps"


def test_published_rows_are_printed_under_ours_with_source_and_protocol(runs, tmp_path):
    pub = tmp_path / "pub.yaml"
    pub.write_text(yaml.safe_dump({"note": "Their nets differ.", "rows": {
        "paper_gan_ring": {"label": "GAN", "source": "Lin et al. 2018, Table 1",
                           "dataset": "ring2d", "n": "10", "protocol": "400 epochs",
                           "metrics": {"modes_captured": [6.3, 0.5], "other": 1.0}}}}))
    md, rows = table_files(runs, tmp_path / "t", "--metrics", "modes_captured",
                           "--published", str(pub))
    cells = md_row(md, "*GAN* (published)", "ring2d")
    assert cells == ["*GAN* (published)", "ring2d", "-", "-", "10", "-", "6.300 ± 0.500"]
    assert md_row(md, "gan", "ring2d")[-1] == "7.000 ± 1.414"  # ours, unchanged
    assert "Rows marked *(published)*" in md and "Their nets differ." in md
    assert "*GAN* on ring2d: Lin et al. 2018, Table 1; protocol: 400 epochs" in md
    (row,) = [r for r in rows if r["model"] == "*GAN* (published)"]
    assert float(row["modes_captured mean"]) == 6.3 and float(row["modes_captured std"]) == 0.5
    assert row["modes_captured n"] == "10"


def test_published_row_with_a_non_number_exits_2(runs, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"rows": {"x": {"metrics": {"modes_captured": "many"}}}}))
    assert bench.main([str(runs), "--published", str(bad)]) == 2
    assert "[mean, spread]" in capsys.readouterr().err


def test_committed_toy_published_rows_are_the_quoted_numbers():
    """The numbers issue 14 quotes from PacGAN's and GDPP's Table 1, and VEEGAN's Table 1."""
    root = Path(__file__).resolve().parents[2]
    pub = bench_table.read_published(root / "benchmarks/published/toy_2d.yaml")
    got = {(r.source.split(" (")[1].split(")")[0], r.label, r.dataset):
           {m: v[0] for m, v in r.metrics.items()} for r in pub.rows}
    hq, modes, rkl = "high_quality_pct", "modes_captured", "mode_reverse_kl"
    assert got[("PacGAN", "GAN", "ring2d")] == {modes: 6.3, hq: 98.2, rkl: 0.45}
    assert got[("PacGAN", "GAN", "grid2d")] == {modes: 17.3, hq: 94.8, rkl: 0.70}
    assert got[("PacGAN", "PacGAN4", "grid2d")] == {modes: 24.8, hq: 93.6, rkl: 0.04}
    assert got[("GDPP", "WGAN-GP", "ring2d")] == {modes: 6.8, hq: 59.6}
    assert got[("GDPP", "WGAN-GP", "grid2d")] == {modes: 24.2, hq: 28.7}
    assert got[("GDPP", "GDPP-GAN", "ring2d")] == {modes: 8.0, hq: 71.7}
    assert got[("GDPP", "GDPP-GAN", "grid2d")] == {modes: 24.8, hq: 68.5}
    assert all(r.dataset in ("ring2d", "grid2d") and r.protocol for r in pub.rows)
    assert not pub.values  # rows only: no column
    # the ring rows of code with np.linspace(0, 2 pi, 8) say that it has 7 distinct modes
    assert all("7 distinct" in r.protocol for r in pub.rows
               if r.dataset == "ring2d" and r.label in ("Unrolled GAN", "WGAN-GP", "GDPP-GAN"))


def test_figures_are_shown_under_the_table(runs, tmp_path):
    md, _ = table_files(runs, tmp_path / "t", "--metrics", "fid", "--figure", "t_gallery.png",
                        "--figure", "t_curves.png")
    lines = md.splitlines()
    at = lines.index("## Figures")
    assert lines[at + 2:at + 4] == ["![t_gallery](t_gallery.png)", "![t_curves](t_curves.png)"]
    assert lines.index("## Notes") > at  # after the table and its reference rows
    plain, _ = table_files(runs, tmp_path / "u", "--metrics", "fid")
    assert "## Figures" not in plain
