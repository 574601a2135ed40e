"""The speed benchmark runs end to end at tiny sizes and writes consistent JSON.

No timing is asserted (the figures depend on the machine); the checks are on structure,
internal consistency (ratios are quotients of the reported throughputs) and on results that
do not depend on speed (a cached second FID equals the first).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from lit_gen.bench.speed import cli as bench_speed
from lit_gen.errors import ConfigError
from tests.conftest import ROOT

TINY = ["--models", "dcgan,vae", "--sizes", "28", "--data", "synthetic",
        "--batches", "dataloader,on_device", "--batch-size", "8", "--warmup", "1", "--steps", "2",
        "--repeats", "1", "--fid-n", "2", "--fid-real", "4", "--fid-batch-size", "8",
        "--extractors", "inception,classifier", "--device", "cpu",
        "--net-overrides", "model.generator.base_channels=8,model.discriminator.base_channels=8"]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "speed.json"
    assert bench_speed.main([*TINY, "--out", str(out)]) == 0
    return json.loads(out.read_text())


def positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def test_training_rows(result):
    rows = {r["case"]: r for r in result["train"]}
    assert set(rows) == {"dcgan-28px-synthetic-dataloader", "dcgan-28px-synthetic-on_device",
                         "vae-28px-synthetic-dataloader", "vae-28px-synthetic-on_device"}
    for r in rows.values():
        assert r["steps"] == 2 and r["batch_size"] == 8 and r["channels"] == 1
        assert positive(r["plain"]["images_per_s"]) and positive(r["plain"]["peak_rss_mb"])
        assert r["plain"]["images_per_s"] == r["plain"]["wall_images_per_s"]  # default clock
        lit, plain = r["lit_gen"]["images_per_s"], r["plain"]["images_per_s"]
        assert r["ratio"] == pytest.approx(lit / plain, rel=1e-3)
        assert r["overhead_ms_per_batch"] == pytest.approx(8e3 / lit - 8e3 / plain, abs=2e-3)
        assert r["status"] == ("PASS" if r["ratio"] >= 0.95 else "FAIL")
        # the bare-LightningModule reference splits the ratio: lit_gen/L x L/plain
        bare = r["lightning"]["images_per_s"]
        assert positive(bare) and r["lightning"]["runs"] == [bare]
        assert r["ratio_vs_lightning"] == pytest.approx(lit / bare, rel=1e-3)
        assert r["lightning_ratio"] == pytest.approx(bare / plain, rel=1e-3)
        assert r["ratio"] == pytest.approx(r["ratio_vs_lightning"] * r["lightning_ratio"], rel=2e-3)
    assert [p["case"] for p in result["data_paths"]] == ["dcgan-28px-synthetic", "vae-28px-synthetic"]
    for dp in result["data_paths"]:
        assert dp["speedup"] == pytest.approx(
            dp["on_device_images_per_s"] / dp["dataloader_images_per_s"], rel=1e-3)
        assert dp["status"] == "INFO"  # no target on CPU


def test_fid_rows(result):
    fid = {r["extractor"]: r for r in result["fid"]}
    inc = fid["inception"]
    assert inc["n_generated"] == 2 and inc["n_real"] == 4
    direct = inc["torch_fidelity"]
    assert positive(direct["first_s"]) and positive(direct["second_s"])
    assert direct["speedup"] == pytest.approx(direct["first_s"] / direct["second_s"], rel=1e-2)
    assert direct["fid_second_equal"] is True  # cached real statistics give the same FID
    assert math.isfinite(direct["fid"]) and direct["fid"] >= 0
    assert inc["status"] in ("PASS", "FAIL")
    for r in fid.values():
        assert r["status"] in ("PASS", "FAIL") and r["judged_path"] == "lit_gen"
        assert r["fid_equal"] is True  # lit_gen's FID is torch-fidelity's
        lit = r["lit_gen"]  # seconds are rounded to 1 ms: tiny runs need the rounding's slack
        assert lit["speedup"] == pytest.approx(lit["first_s"] / lit["second_s"],
                                               rel=1e-3 / lit["second_s"] + 1e-3)


def test_targets_and_environment(result):
    checks = [t["check"] for t in result["targets"]]
    assert len(checks) == len(result["train"]) + len(result["fid"]) + len(result["data_paths"])
    assert all(t["status"] in ("PASS", "FAIL", "SKIP", "INFO") for t in result["targets"])
    env = result["environment"]
    assert env["device"] == "cpu" and env["torch"] and env["cpu_threads"] >= 1
    if torch.cuda.device_count() == 0:  # no NVML query in each Adam step of a CPU machine
        assert env["cuda_query_per_step"] is False
    assert result["settings"]["steps"] == 2 and result["wall_s"] > 0
    text = bench_speed.format_report(result)
    assert "training (real images/s)" in text and "targets:" in text


def test_bad_arguments_exit_2(capsys):
    assert bench_speed.main(["--models", "dcgan,nope", "--skip-fid"]) == 2
    assert "--models: unknown 'nope'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--steps must be >= 1"):
        bench_speed.parse_args(["--steps", "0"])
    assert bench_speed.parse_args([])[0].lightning_floor is True
    assert bench_speed.parse_args(["--no-lightning-floor"])[0].lightning_floor is False


def test_one_entry_point(capsys):
    from lit_gen.bench import MODES, main

    assert MODES["speed"] == "lit_gen.bench.speed"
    with pytest.raises(SystemExit) as exit_:
        main(["speed", "--help"])
    assert exit_.value.code == 0 and "--experiments" in capsys.readouterr().out
    assert not (ROOT / "benchmarks" / "speed.py").exists()
    assert not (ROOT / "lit_gen" / "bench" / "speed" / "__main__.py").exists()


def test_reference_loops_name_their_counterparts():
    from lit_gen.bench.speed import lit, plain, script

    for fn in (plain.plain_gan, plain.plain_vae, plain.timed_loop, lit.run_bare):
        assert "Counterpart of `" in fn.__doc__, fn.__name__
    assert "AdversarialModule.train_batch" in plain.plain_gan.__doc__
    assert "VAE.train_batch" in plain.plain_vae.__doc__
    assert "lit_gen.fit" in script.__doc__


def tiny_experiment(tmp_path):
    from omegaconf import OmegaConf

    from lit_gen import validation
    from lit_gen.bench.speed.lit import load_data

    cfg = validation.load([str(ROOT / "conf" / "experiment" / "gan_ring2d.yaml")],
                          ["data.n_samples=80", "data.batch_size=16", "data.val_fraction=0",
                           "trainer.log_every_n_steps=2"])
    (tmp_path / "cfg.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    x = load_data(cfg).x_train
    torch.save(x, tmp_path / "x.pt")
    return cfg, x


def write_spec(tmp_path, mode, epochs=2, k=1):
    spec = tmp_path / f"{mode}{k}.json"
    spec.write_text(json.dumps({"mode": mode, "config": str(tmp_path / "cfg.yaml"),
                                "data": str(tmp_path / "x.pt"), "epochs": epochs, "threads": 1,
                                "out": str(tmp_path / f"{mode}{k}"), "steps_per_batch": k}))
    return str(spec)


def test_epoch_batches_cover_the_data_once_per_epoch():
    from lit_gen.bench.speed.script import epoch_batches

    x = torch.arange(50.0).view(25, 2)
    batches = [b for b, _ in epoch_batches(x, 4, epoch=0, seed=1)]
    assert len(batches) == 6 and all(b.shape == (4, 2) for b in batches)  # drop_last
    seen = torch.cat(batches)[:, 0]
    assert len(set(seen.tolist())) == 24  # no example twice
    again = [b for b, _ in epoch_batches(x, 4, epoch=0, seed=1)]
    other = [b for b, _ in epoch_batches(x, 4, epoch=1, seed=1)]
    assert torch.equal(torch.cat(batches), torch.cat(again))
    assert not torch.equal(torch.cat(batches), torch.cat(other))
    stacked = [b for b, _ in epoch_batches(x, 4, epoch=0, seed=1, steps_per_batch=2)]
    assert len(stacked) == 3 and stacked[0].shape == (2, 4, 2)
    assert torch.equal(torch.cat([b.flatten(0, 1) for b in stacked]), torch.cat(batches))


def test_torch_optimizer_is_lit_gens(tmp_path):
    from lit_gen.bench.speed.script import torch_optimizer
    from lit_gen.models.optim import build_optimizer

    for cfg in ({"name": "adam", "lr": 1e-3, "betas": [0.5, 0.9], "weight_decay": 0.1,
                 "momentum": 0.0, "foreach": None, "fused": None},
                {"name": "sgd", "lr": 0.1, "betas": [0.5, 0.9], "weight_decay": 0.0,
                 "momentum": 0.9, "foreach": None, "fused": None}):
        p = [torch.nn.Parameter(torch.zeros(3))]
        ours, theirs = torch_optimizer(p, cfg, "k"), build_optimizer(p, cfg, "k")
        assert type(ours) is type(theirs) and ours.defaults == theirs.defaults


def test_reference_scripts_train(tmp_path):
    import sys

    from lit_gen.bench.speed.script import train

    cfg, x = tiny_experiment(tmp_path)
    train(write_spec(tmp_path, "plain", epochs=2))
    steps = 2 * (len(x) // 16)
    lines = (tmp_path / "plain1" / "losses.csv").read_text().split()
    assert [int(line.split(",")[0]) for line in lines] == list(range(2, steps + 1, 2))
    assert len(torch.load(tmp_path / "plain1" / "final.pt")) == 2  # generator, discriminator
    before = torch.get_num_threads()
    try:
        train(write_spec(tmp_path, "bare", epochs=2, k=2))
    finally:
        torch.set_num_threads(before)
    assert (tmp_path / "bare2" / "final.pt").is_file()
    assert "lightning" in sys.modules


def plain_ms(row: dict) -> float:
    return row["plain"]["ms_per_step"]


def test_whole_process_sides_time_lit_gen_with_batch_groups(tmp_path, monkeypatch):
    """`--steps-per-batch K` adds lit_gen.fit with data.group_batches=K, counted by the
    data's batches (a short last group still trains), and the --clock it is given."""
    from lit_gen.bench.speed import process
    from lit_gen.bench.speed.settings import Settings

    assert process.sides(Settings(steps_per_batch=[4]))["lit_gen_k4"] == ("lit_gen", 4)
    calls = []
    monkeypatch.setattr(process, "timed", lambda argv, env, cwd, log, clock="wall":
                        calls.append((argv, clock)) or float(len(calls)))
    monkeypatch.setattr(process, "in_epoch", lambda exp, s, device: {"plain": 1.0, "lightning": 1.0,
                                                                    "lit_gen": 1.0})
    s = Settings(steps_per_batch=[4], process_repeats=1, epochs=1, clock="process")
    process.bench_experiment("gan_ring2d", s, torch.device("cpu"), process.ROOT, lambda m: None)
    grouped = [argv for argv, _ in calls if "data.group_batches=4" in argv]
    assert len(grouped) == 2 and all("lit_gen.fit" in argv for argv in grouped)
    assert {clock for _, clock in calls} == {"process"}


@pytest.mark.slow
def test_whole_process_section(tmp_path):
    out = tmp_path / "process.json"
    assert bench_speed.main(["--skip-train", "--skip-fid", "--experiments", "gan_ring2d",
                             "--epochs", "1", "--process-repeats", "1", "--steps-per-batch", "2",
                             "--warmup", "1", "--steps", "2", "--repeats", "1", "--device", "cpu",
                             "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    (row,) = result["process"]
    assert row["experiment"] == "gan_ring2d" and row["epochs"] == [1, 3]
    assert row["steps"][1] == 3 * row["steps"][0]
    for side in ("plain", "lightning", "lit_gen", "lightning_k2", "lit_gen_k2"):
        assert math.isfinite(row[side]["ms_per_step"]) and row[side]["runs_ms_per_step"]
    # ratios are rounded to 4 decimals (abs 5e-5), from ms rounded to 4 decimals (rel 2e-3)
    assert row["lit_gen_k2"]["ratio"] == pytest.approx(plain_ms(row) / row["lit_gen_k2"]["ms_per_step"],
                                                       rel=2e-3, abs=6e-5)
    plain, lit = row["plain"]["ms_per_step"], row["lit_gen"]["ms_per_step"]
    assert row["ratio"] == pytest.approx(plain / lit, rel=2e-3, abs=6e-5)
    assert row["ratio"] == pytest.approx(row["lightning_ratio"] * row["ratio_vs_lightning"],
                                         rel=3e-3, abs=2e-4)
    inside = row["in_epoch_ms_per_step"]
    assert row["in_epoch_ratio"] == pytest.approx(inside["plain"] / inside["lit_gen"], rel=2e-3,
                                                  abs=6e-5)
    # the grouped side inside the epoch too (bare Lightning's K side is whole-process only)
    assert set(inside) == {"plain", "lightning", "lit_gen", "lit_gen_k2"}
    assert all(math.isfinite(v) and v > 0 for v in inside.values())
    assert row["lit_gen_k2"]["in_epoch_ratio"] == pytest.approx(
        inside["plain"] / inside["lit_gen_k2"], rel=2e-3)
    assert "in-epoch x" in bench_speed.format_report(result)
    # on a loaded machine a 3N-epoch run can take no longer than the N one: named, not rated
    sides = ("plain", "lightning", "lit_gen", "lightning_k2", "lit_gen_k2")
    noisy = [s for s in sides if row[s]["ms_per_step"] <= 0]
    assert row["status"] == ("NOISE" if noisy else "PASS" if row["ratio"] >= 0.95 else "FAIL")
    assert ("noise" in row) == bool(noisy)
    assert "whole process" in bench_speed.format_report(result)
