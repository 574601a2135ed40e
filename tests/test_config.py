"""Config loading, overrides and validation: clear one-line errors, exit code 2, nothing written."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from lit_gen import config, validation
from lit_gen.errors import ConfigError
from tests.conftest import ROOT, run_cli

QUICK = ROOT / "conf" / "experiment" / "dcgan_digits.yaml"


def test_defaults_and_experiment_name():
    cfg = validation.load([QUICK])
    assert cfg.experiment == "dcgan_digits"
    assert cfg.data.name == "digits" and cfg.data.image_size == 16
    assert cfg.model.generator["name"] == "dcgan"
    assert cfg.model.generator["base_channels"] == 64
    assert cfg.model.latent_dim == 100
    assert cfg.seed == 0


@pytest.mark.parametrize("form", ["{k}={v}", "--{k}={v}"])
def test_override_forms(form):
    cfg = validation.load([QUICK], [form.format(k="model.g_optim.lr", v="0.005"),
                                form.format(k="trainer.devices", v="2")])
    assert cfg.model.g_optim.lr == pytest.approx(0.005)
    assert cfg.trainer.devices == 2


def test_python_none_from_a_sweep_is_null():
    """wandb's agent and lit_gen.sweep format a sweep file's null as str(None)."""
    cfg = validation.load([QUICK], ["--model.ema.decay=None", "model.ema.decay=None"])
    assert cfg.model.ema.decay is None
    cfg = validation.load([QUICK], ["--model.ema.decay=0.999"])
    assert cfg.model.ema.decay == pytest.approx(0.999)


def test_several_configs_merge_left_to_right(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("seed: 3\ndata: {name: ring2d, batch_size: 7}\n")
    b.write_text("data: {batch_size: 9}\n")
    cfg = validation.load([a, b], ["seed=5"])
    assert (cfg.seed, cfg.data.name, cfg.data.batch_size) == (5, "ring2d", 9)
    assert cfg.experiment == "b"


def test_defaults_list_and_renamed_net_replaced(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("model: {generator: {name: dcgan, base_channels: 8}}\n")
    top = tmp_path / "top.yaml"
    top.write_text("defaults: [base.yaml]\nmodel: {generator: {name: mlp, hidden: [4]}}\n")
    cfg = validation.load([top])
    assert OmegaConf.to_container(cfg.model.generator) == {"name": "mlp", "hidden": [4]}


@pytest.mark.parametrize("override, words", [
    (["model.nonsense=1"], ["model.nonsense", "Valid keys", "latent_dim"]),
    (["data.batch_size=abc"], ["data.batch_size"]),
    (["model.name=nope"], ["model.name", "nope", "gan"]),
    (["data.name=imagenet"], ["data.name", "imagenet", "digits", "ring2d"]),
    (["model.loss=bogus"], ["model.loss", "hinge", "wasserstein"]),
    (["model.generator.name=transformer"], ["model.generator.name", "dcgan", "mlp"]),
    (["model.generator.widht=3"], ["model.generator.widht", "base_channels"]),
    (["model.penalties=[{name: gpp}]"], ["gpp", "dragan", "r1"]),
    (["model.penalties=[{name: gp, wieght: 1}]"], ["wieght", "weight"]),
    (["model.params.gamma=0.5"], ["model.params.gamma"]),
    (["data.val_fraction=1.5"], ["data.val_fraction"]),
    (["run.on_nonfinite=ignore"], ["run.on_nonfinite", "ignore", "stop, skip_step"]),
    (["metrics.names=[fid,nope]"], ["nope", "fid"]),
    (["oops"], ["key=value"]),
])
def test_bad_config_names_the_key(override, words):
    with pytest.raises(ConfigError) as info:
        validation.load([QUICK], override)
    msg = str(info.value)
    for w in words:
        assert w in msg
    assert len(msg.splitlines()) <= 2


def test_missing_config_file():
    with pytest.raises(ConfigError, match="not found"):
        validation.load(["conf/experiment/does_not_exist.yaml"])


def test_cli_bad_key_exit_2_no_traceback_nothing_written(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli("lit_gen.fit", "--config", str(QUICK), f"run.dir={run_dir}", "model.foo=1")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "model.foo" in proc.stderr and proc.stderr.startswith("error:")
    assert len(proc.stderr.strip().splitlines()) <= 2
    assert not run_dir.exists()


def test_quickstart_without_classifier_says_how_to_train_it(tmp_path):
    proc = run_cli("lit_gen.fit", "--config", str(ROOT / "conf" / "experiment" / "quickstart.yaml"),
                   "metrics.classifier_ckpt=" + str(tmp_path / "missing.pt"),
                   f"run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "lit_gen.train_classifier" in proc.stderr and "missing.pt" in proc.stderr
    assert not (tmp_path / "run").exists()


def test_cli_print_config_resolves_everything(tmp_path):
    proc = run_cli("lit_gen.fit", "--config", str(QUICK), "--print-config", "--seed=7")
    assert proc.returncode == 0, proc.stderr
    printed = OmegaConf.create(proc.stdout)
    assert printed.seed == 7
    assert printed.experiment == "dcgan_digits"
    assert printed.trainer.max_epochs == OmegaConf.load(QUICK).trainer.max_epochs == 100
    assert "run dir" not in proc.stdout


def test_conf_defaults_yaml_matches_schema():
    """conf/defaults.yaml documents the schema; it must say exactly what the code does."""
    documented = OmegaConf.load(ROOT / "conf" / "defaults.yaml")
    schema = OmegaConf.structured(config.Config)
    assert OmegaConf.to_container(documented) == OmegaConf.to_container(schema)


def test_override_indexes_into_lists():
    cfg = validation.load([ROOT / "conf" / "experiment" / "wgan_gp_digits.yaml"],
                      ["model.penalties.0.weight=5", "model.g_optim.betas.1=0.95"])
    assert cfg.model.penalties[0]["weight"] == 5
    assert cfg.model.penalties[0]["name"] == "gp"
    assert list(cfg.model.g_optim.betas) == pytest.approx([0.0, 0.95])
    with pytest.raises(ConfigError, match=r"model.penalties\[3\]"):
        validation.load([ROOT / "conf" / "experiment" / "wgan_gp_digits.yaml"],
                    ["model.penalties.3.weight=5"])
