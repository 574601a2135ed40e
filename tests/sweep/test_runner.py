"""Sweep files (W&B schema, coverage of the zoo) and the local sweep runner."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lit_gen.errors import ConfigError
from lit_gen.sweep import runner as sweep_mod
from lit_gen.sweep.file import SweepFile, import_sweeps, load_sweep, run_name, validate_spec
from lit_gen.sweep.runner import LocalSweep, slots_for
from tests.conftest import ROOT, run_cli

SWEEP_FILES = sorted((ROOT / "sweeps").glob("*.yaml"))
# experiment files that sweeps list ahead of the branches that add them (GAN zoo, VAE family);
# checked like every other entry once they exist
PENDING = {f"conf/experiment/{m}_{d}.yaml"
           for m in ("cgan", "acgan", "infogan", "ebgan", "began", "sngan", "r1gan",
                     "vae", "cvae", "beta_vae", "wae_mmd", "wae_gan", "aae", "vaegan")
           for d in ("mnist", "digits")}
# the files whose `config` lists must together cover every experiment of a dataset, once each
FAMILIES = {"mnist": ("gan_mnist", "vae_mnist", "ae_mnist"),
            "fashion_mnist": ("table_fashion_mnist",),
            "ring2d": ("toy",), "grid2d": ("toy",)}
TOY_RUN = "conf/experiment/gan_ring2d.yaml"
TINY = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "trainer.accelerator=cpu", "data.n_samples=400", "data.batch_size=16"]


def write_sweep(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def toy_spec(**changes) -> dict:
    spec = {"name": "tiny", "method": "grid",
            "command": ["${env}", "python", "-m", "lit_gen.fit", "${args}"],
            "parameters": {"config": {"values": [TOY_RUN, "conf/experiment/wgan_gp_ring2d.yaml"]},
                           "seed": {"values": [0, 1, 2]},
                           "trainer.max_epochs": {"value": 1}}}
    spec.update(changes)
    return spec


def config_values(path: Path) -> list[str]:
    return yaml.safe_load(path.read_text())["parameters"].get("config", {}).get("values", [])


# --- the sweep files ---------------------------------------------------------------------

@pytest.mark.parametrize("path", SWEEP_FILES, ids=[p.stem for p in SWEEP_FILES])
def test_sweep_file_is_a_valid_wandb_sweep(path):
    sweeps = import_sweeps()
    spec = yaml.safe_load(path.read_text())
    assert sweeps.schema_violations_from_proposed_config(spec) == []
    filled = sweeps.SweepConfig(spec)  # W&B's fill-and-validate, as `wandb sweep` does
    assert filled["method"] in ("grid", "random", "bayes")
    assert filled["metric"]["name"] and filled["metric"]["goal"] in ("minimize", "maximize")
    sweep = load_sweep(path)
    assert sweep.name == path.stem
    # the command is the one `wandb agent` runs: python -m lit_gen.fit with the parameters
    args = sweep.fit_args({"seed": 3})
    assert any(a in ("--seed=3", "seed=3") for a in args)


@pytest.mark.parametrize("path", SWEEP_FILES, ids=[p.stem for p in SWEEP_FILES])
def test_every_run_of_a_sweep_file_is_a_valid_config(path, tmp_path):
    """Each run the sweep launches loads as a lit_gen config, metrics included (with a stand-in
    classifier file: the Inception weights / trained classifier are not on this machine)."""
    sweep = load_sweep(path)
    missing = [c for c in config_values(path) if not (ROOT / c).is_file()]
    assert set(missing) <= PENDING, f"{path.name} lists unknown experiment files: {missing}"
    (tmp_path / "clf.pt").write_bytes(b"")
    extra = ["metrics.feature_extractor=classifier", f"metrics.classifier_ckpt={tmp_path / 'clf.pt'}"]
    local = LocalSweep(sweep, tmp_path, extra, max_runs=None if sweep.method == "grid" else 3)
    runs = local.runs if sweep.method == "grid" else [local.propose() for _ in range(3)]
    checked = 0
    for run in runs:
        if run.params.get("config") in missing:
            continue
        local.validate(run)
        checked += 1
    if checked == 0:
        pytest.skip(f"every experiment of {path.name} comes with another branch: {missing}")
    names = [r.name for r in runs]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("dataset", sorted(FAMILIES))
def test_sweeps_cover_every_experiment_of_a_dataset_once(dataset):
    """Adding an experiment file means adding its line to a sweep (one line)."""
    listed = [c for name in FAMILIES[dataset] for c in config_values(ROOT / "sweeps" / f"{name}.yaml")
              if c.endswith(f"_{dataset}.yaml")]
    assert len(listed) == len(set(listed)), "an experiment is listed twice"
    present = {f"conf/experiment/{p.name}"
               for p in (ROOT / "conf" / "experiment").glob(f"*_{dataset}.yaml")
               if dataset == "fashion_mnist" or not p.stem.endswith("_fashion_mnist")}
    assert present <= set(listed), f"not in any sweep: {sorted(present - set(listed))}"
    assert set(listed) - present <= PENDING


def test_sweep_metric_is_a_key_the_runs_write():
    from lit_gen import metrics

    keys_of = getattr(metrics, "METRIC_KEYS", None)
    if keys_of is None:
        pytest.skip("metric keys arrive with the evaluation branch (lit_gen.metrics.METRIC_KEYS)")
    for path in SWEEP_FILES:
        spec = yaml.safe_load(path.read_text())
        params = spec["parameters"]
        if "metrics.names" in params:
            names = params["metrics.names"]["value"]
        else:  # the experiments name their metrics
            from lit_gen import validation

            names = validation.load([params["config"]["values"][0]]).metrics.names
        written = {k for n in names for k in keys_of[n]}
        assert spec["metric"]["name"] in written, path.name


# --- command lines and names -------------------------------------------------------------

def test_fit_args_are_formatted_exactly_as_wandb_agent_does():
    """Independent reference: wandb's own agent helper for ${args} / ${args_no_hyphens}."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    params = {"config": "conf/experiment/gan_ring2d.yaml", "seed": 2, "model.g_optim.lr": 1e-05,
              "logger.wandb.enabled": True, "metrics.names": ["toy"],
              "model.penalties": [{"name": "gp", "weight": 10.0}]}
    ref = create_sweep_command_args({"args": {k: {"value": v} for k, v in sorted(params.items())}})
    for macro, key in (("${args}", "args"), ("${args_no_hyphens}", "args_no_hyphens")):
        spec = {"command": ["python", "-m", "lit_gen.fit", "--config", TOY_RUN, macro]}
        got = SweepFile(Path("x.yaml"), spec).fit_args(params)
        assert got == ["--config", TOY_RUN, *ref[key]]
    # and lit_gen.fit reads them back as the values they were
    from lit_gen import validation
    from lit_gen.run.cli import parse_args

    args, overrides = parse_args(ref["args"])
    cfg = validation.load(args.config, overrides)
    assert (cfg.seed, cfg.model.g_optim.lr, cfg.logger.wandb.enabled) == (2, 1e-05, True)
    assert list(cfg.metrics.names) == ["toy"]
    assert cfg.model.penalties[0]["weight"] == 10.0


def test_run_names_are_readable_unique_and_bounded():
    names = ["config", "model.d_optim.lr", "model.g_optim.lr", "seed"]
    a = run_name({"config": "conf/experiment/gan_mnist.yaml", "seed": 1,
                  "model.g_optim.lr": 0.001, "model.d_optim.lr": 0.002}, names)
    assert a == "gan_mnist,model.d_optim.lr=0.002,model.g_optim.lr=0.001,seed=1"
    assert run_name({"seed": 1, "model.n_critic": 5}, ["model.n_critic", "seed"]) == "n_critic=5,seed=1"
    assert run_name({"seed": 1, "trainer.max_epochs": 3}, ["seed"]) == "seed=1"  # constants unnamed
    long = run_name({"model.penalties": [{"name": "gp", "weight": 10.0 + i} for i in range(30)]},
                    ["model.penalties"])
    assert len(long) == 96 and long != run_name({"model.penalties": []}, ["model.penalties"])


# --- planning ------------------------------------------------------------------------------

def test_dry_run_lists_the_grid(tmp_path, capsys):
    path = write_sweep(tmp_path / "tiny.yaml", toy_spec())
    code = sweep_mod.main([str(path), "--dry-run", "--root", str(tmp_path / "root")])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    names = [line.split()[1] for line in out[1:] if line.startswith("new")]
    expected = [f"{e},seed={s}" for e, s in itertools.product(["gan_ring2d", "wgan_gp_ring2d"],
                                                              [0, 1, 2])]
    assert names == expected
    assert out[0] == f"sweep 'tiny' (grid, 6 runs) -> {tmp_path / 'root'}"
    cmd = out[2].split()
    assert cmd[:3] == ["python", "-m", "lit_gen.fit"]
    assert f"--config={TOY_RUN}" in cmd and "--seed=0" in cmd and "--trainer.max_epochs=1" in cmd
    assert cmd[-1] == f"run.dir={tmp_path / 'root' / 'gan_ring2d,seed=0'}"
    assert not (tmp_path / "root").exists()  # a dry run writes nothing


def test_random_search_is_seeded_and_capped(tmp_path, capsys):
    spec = toy_spec(method="random", run_cap=4, parameters={
        "model.g_optim.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
        "model.n_critic": {"values": [1, 2, 5]}})
    spec["command"] = ["python", "-m", "lit_gen.fit", "--config", TOY_RUN, "${args_no_hyphens}"]
    path = write_sweep(tmp_path / "r.yaml", spec)

    def listed(*extra):
        assert sweep_mod.main([str(path), "--dry-run", "--root", str(tmp_path / "x"), *extra]) == 0
        return [line.split()[1] for line in capsys.readouterr().out.splitlines()
                if line.startswith("new")]

    first, again, other = listed(), listed(), listed("--seed", "1")
    assert len(first) == 4 and first == again and first != other
    short = listed("--max-runs", "2")
    assert short == first[:2]
    for name in first:
        parts = dict(p.split("=") for p in name.split(","))
        assert 1e-4 <= float(parts["lr"]) <= 1e-2 and parts["n_critic"] in {"1", "2", "5"}


def test_bayes_search_feeds_finished_runs_back(tmp_path):
    """With score = +lr the engine moves up, with score = -lr down (same seeds, same first
    random draws): the metrics in metrics.json reach W&B's bayes engine."""
    spec = validate_spec({"method": "bayes", "metric": {"name": "score", "goal": "maximize"},
                          "command": ["python", "-m", "lit_gen.fit", "--config", TOY_RUN,
                                      "${args_no_hyphens}"],
                          "parameters": {"model.g_optim.lr": {"min": 0.0, "max": 1.0}},
                          "run_cap": 10}, "test")
    chosen = {}
    for sign in (1, -1):
        local = LocalSweep(SweepFile(tmp_path / "b.yaml", spec), tmp_path / f"root{sign}")
        xs = []
        for _ in range(5):
            run = local.propose()
            x = run.params["model.g_optim.lr"]
            xs.append(x)
            d = local.root / run.name
            d.mkdir(parents=True)
            (d / "done.json").write_text("{}")
            (d / "metrics.json").write_text(json.dumps({"score": sign * x}))
        chosen[sign] = xs
        history = [local.sweep_run(r, set(), set()) for r in local.runs]
        assert [h.state for h in history] == ["finished"] * 5
        assert history[0].summary_metrics == {"score": pytest.approx(sign * xs[0])}
    assert chosen[1][:3] == chosen[-1][:3]  # random start, same seed
    assert sum(chosen[1][3:]) / 2 > 0.5 > sum(chosen[-1][3:]) / 2


def test_slots_and_threads():
    assert slots_for(None, None) == [None]
    assert slots_for(3, None) == [None, None, None]
    assert slots_for(None, "0,1") == ["0", "1"]
    assert slots_for(4, "2,3") == ["2", "3", "2", "3"]
    with pytest.raises(ConfigError, match="--gpus"):
        slots_for(None, "0,a")


@pytest.fixture
def fake_fit(monkeypatch):
    """Scheduling without training: a fake process finishes a run by writing its files.
    Returns the list of (run name, CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS) launched."""
    launched = []

    class FakeProc:
        def __init__(self, cmd, stdout, stderr, env, **kwargs):
            run_dir = Path(cmd[-1].split("=", 1)[1])
            launched.append((run_dir.name, env.get("CUDA_VISIBLE_DEVICES"),
                             env.get("OMP_NUM_THREADS")))
            self.run_dir, self.polls = run_dir, 0

        def poll(self):
            self.polls += 1
            if self.polls < 2:
                return None
            (self.run_dir / "metrics.json").write_text("{}")
            (self.run_dir / "done.json").write_text("{}")
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeProc)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return launched


def test_gpu_slots_and_parallel_launch(tmp_path, fake_fit):
    path = write_sweep(tmp_path / "g.yaml", toy_spec())
    code = sweep_mod.main([str(path), "--root", str(tmp_path / "root"), "--gpus", "0,1",
                           "--threads", "3"])
    assert code == 0
    assert [g for _, g, _ in fake_fit] == ["0", "1", "0", "1", "0", "1"]
    assert {t for _, _, t in fake_fit} == {"3"}
    assert len({n for n, _, _ in fake_fit}) == 6
    assert not (tmp_path / "root" / ".lock").exists()


def test_one_sweep_per_root(tmp_path, fake_fit, capsys):
    import os

    path = write_sweep(tmp_path / "g.yaml", toy_spec())
    root = tmp_path / "root"
    root.mkdir()
    (root / ".lock").write_text(str(os.getpid()))  # a live sweep holds the root
    assert sweep_mod.main([str(path), "--root", str(root)]) == 2
    assert "another lit_gen.sweep" in capsys.readouterr().err and fake_fit == []
    (root / ".lock").write_text("999999999")  # above pid_max: a sweep that died
    assert sweep_mod.main([str(path), "--root", str(root), "--parallel", "3"]) == 0
    assert len(fake_fit) == 6 and {t for _, _, t in fake_fit} == {str(max(1, os.cpu_count() // 3))}


def test_a_run_finished_or_started_outside_the_runner_meanwhile_is_not_relaunched(
        tmp_path, fake_fit, monkeypatch, capsys):
    """The queue is made at start; by the time a run's turn comes a fit outside this runner
    may have finished it (relaunching it with resume=last would reopen it and overwrite its
    done.json) or be training it: both are skipped, named."""
    from lit_gen.run.lock import RunLock

    spec = toy_spec(parameters={"seed": {"values": [0, 1, 2]}, "config": {"value": TOY_RUN}})
    path = write_sweep(tmp_path / "g.yaml", spec)
    root = tmp_path / "root"
    held = []

    class Outside(subprocess.Popen):  # the fixture's fake process, plus an outside fit
        def poll(self):
            code = super().poll()
            if code == 0 and not held:  # while seed=0 ran: seed=1 started, seed=2 finished
                held.append(RunLock(root / "seed=1").acquire())
                (root / "seed=2").mkdir()
                for f in ("config.yaml", "metrics.json", "done.json"):
                    (root / "seed=2" / f).write_text("{}")
            return code

    monkeypatch.setattr(subprocess, "Popen", Outside)
    try:
        assert sweep_mod.main([str(path), "--root", str(root)]) == 1  # seed=1 not run
    finally:
        held[0].release()
    assert [n for n, _, _ in fake_fit] == ["seed=0"]
    out = capsys.readouterr().out
    assert "skipping seed=1: a live lit_gen.fit holds" in out
    assert "skipping seed=2: finished meanwhile" in out
    assert (root / "seed=2" / "done.json").read_text() == "{}"


@pytest.mark.parametrize("spec, message", [
    ({"method": "grid", "parameters": {"seed": {"values": [0]}}, "tune": 1,
      "command": ["python", "-m", "lit_gen.fit", "${args}"]}, "'tune' was unexpected"),
    (toy_spec(command=["python", "train.py", "${args}"]), "must run `python -m lit_gen.fit`"),
    (toy_spec(command=["python", "-m", "lit_gen.fit", "${args_no_hyphens}"]), "needs ${args}"),
    (toy_spec(command=["python", "-m", "lit_gen.fit", "${args_json}"]), "${args_json}"),
    (toy_spec(method="random"), "never ends"),
    (toy_spec(method="bayes", run_cap=3), "needs a `metric"),
    (toy_spec(parameters={"config": {"values": [TOY_RUN]}, "model.bogus": {"values": [1, 2]}}),
     "unknown config key 'model.bogus'"),
    (toy_spec(parameters={"config": {"values": ["conf/experiment/nope.yaml"]}}),
     "config file not found"),
    (toy_spec(parameters={"seed": {"min": 2, "max": 1}}), "min 2 is not less than max 1"),
    (toy_spec(parameters={"run.dir": {"values": ["a", "b"]}}), "set by lit_gen.sweep"),
])
def test_bad_sweep_files_exit_2(tmp_path, capsys, spec, message):
    path = write_sweep(tmp_path / "bad.yaml", spec)
    code = sweep_mod.main([str(path), "--dry-run", "--root", str(tmp_path / "root")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_unreadable_sweep_file_and_overrides_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: grid\ncommand: [${env}, python]\n")
    assert sweep_mod.main([str(bad), "--dry-run"]) == 2
    assert "line 2" in capsys.readouterr().err
    assert sweep_mod.main([str(tmp_path / "missing.yaml")]) == 2
    assert "sweep file not found" in capsys.readouterr().err
    good = write_sweep(tmp_path / "g.yaml", toy_spec())
    assert sweep_mod.main([str(good), "--dry-run", "seed=4"]) == 2
    assert "varying sweep parameter" in capsys.readouterr().err


# --- a real sweep ------------------------------------------------------------------------

@pytest.mark.slow
def test_local_sweep_runs_skips_and_resumes(tmp_path):
    spec = toy_spec(parameters={"seed": {"values": [0, 1]}})
    spec["command"] = ["${env}", "python", "-m", "lit_gen.fit", "--config", TOY_RUN,
                       "${args_no_hyphens}"]
    path = write_sweep(tmp_path / "tiny.yaml", spec)
    root = tmp_path / "root"
    env = {"OMP_NUM_THREADS": "1"}

    def sweep(*extra):
        return run_cli("lit_gen.sweep", str(path), "--root", str(root), *extra, *TINY, env=env)

    first = sweep("--parallel", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "2 finished, 0 already finished (skipped), 0 failed" in first.stdout
    for seed in (0, 1):
        d = root / f"seed={seed}"
        assert (d / "done.json").is_file() and (d / "metrics.json").is_file()
        assert yaml.safe_load((d / "config.yaml").read_text())["seed"] == seed
    state = json.loads((root / "sweep.json").read_text())
    assert [r["name"] for r in state["runs"]] == ["seed=0", "seed=1"]

    stamp = (root / "seed=0" / "metrics.json").stat().st_mtime_ns
    second = sweep()
    assert second.returncode == 0
    assert "0 finished, 2 already finished (skipped), 0 failed" in second.stdout
    assert (root / "seed=0" / "metrics.json").stat().st_mtime_ns == stamp

    # seed=0 crashed after a checkpoint: resumed; seed=1 crashed before one: started again
    (root / "seed=0" / "done.json").unlink()
    (root / "seed=1" / "done.json").unlink()
    shutil.rmtree(root / "seed=1" / "checkpoints")
    third = sweep()
    assert third.returncode == 0, third.stdout + third.stderr
    assert "[1/2] resume seed=0" in third.stdout and "[2/2] restart seed=1" in third.stdout
    assert "2 finished, 0 already finished" in third.stdout
    launches = [line for line in (root / "seed=0" / "sweep.log").read_text().splitlines()
                if line.startswith("$ ")]
    assert len(launches) == 2 and "resume=last" in launches[1] and "resume" not in launches[0]
    assert (root / ".attempts" / "seed=1.1" / "config.yaml").is_file()
    assert (root / "seed=1" / "done.json").is_file()

    # changing the extra overrides would silently change what the names mean: refused
    changed = run_cli("lit_gen.sweep", str(path), "--root", str(root), *TINY[:-1], env=env)
    assert changed.returncode == 2 and "different overrides" in changed.stderr
