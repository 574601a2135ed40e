"""Metric configuration fails before any work, with a message naming the key and the fix."""

from __future__ import annotations

import urllib.error

import pytest

from lit_gen import validation
from lit_gen.errors import ConfigError
from lit_gen.metrics import extractors
from lit_gen.metrics.extractors import INCEPTION_URL


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and an empty torch.hub cache."""
    monkeypatch.setattr(extractors, "network_available", lambda *a, **k: False)
    monkeypatch.setattr(extractors, "hub_inception_path", lambda: tmp_path / "hub" / "missing.pth")


def test_offline_default_inception_fails_at_validation_naming_url_and_key(offline):
    with pytest.raises(ConfigError) as err:
        validation.load(["conf/experiment/dcgan_digits.yaml"], ["metrics.names=[fid]"])
    msg = str(err.value)
    assert INCEPTION_URL in msg and "metrics.inception_weights=" in msg
    assert "metrics.feature_extractor=classifier" in msg


def test_offline_fit_exits_2_before_writing_anything(offline, tmp_path, capsys):
    from lit_gen.fit import main

    run_dir = tmp_path / "run"
    code = main(["--config", "conf/experiment/dcgan_digits.yaml", f"run.dir={run_dir}",
                 "metrics.names=[fid,isc]"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and INCEPTION_URL in err and "Traceback" not in err
    assert not run_dir.exists()


def test_local_inception_weights_pass_offline(offline, tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    cfg = validation.load([], ["metrics.names=[fid]", f"metrics.inception_weights={weights}"])
    assert cfg.metrics.inception_weights == str(weights)
    with pytest.raises(ConfigError, match="metrics.inception_weights: file not found"):
        validation.load([], ["metrics.names=[fid]", f"metrics.inception_weights={tmp_path / 'no.pth'}"])


def test_failed_download_at_start_is_a_config_error(monkeypatch, tmp_path):
    from types import SimpleNamespace

    monkeypatch.setattr(extractors, "hub_inception_path", lambda: tmp_path / "hub" / "w.pth")

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no route")

    monkeypatch.setattr(extractors.urllib.request, "urlopen", no_network)
    m = SimpleNamespace(feature_extractor="inception-v3-compat", inception_weights=None)
    with pytest.raises(ConfigError, match="download failed"):
        extractors.prepare_extractor(m)
    assert not (tmp_path / "hub" / "w.pth").exists()


@pytest.mark.parametrize("overrides, match", [
    (["metrics.names=[fidd]"], "unknown metric 'fidd'. Valid metrics: isc, fid"),
    (["metrics.names=[fid]", "metrics.feature_extractor=vgg"], "unknown feature extractor 'vgg'"),
    (["metrics.names=[fid]", "metrics.feature_extractor=classifier"], "metrics.classifier_ckpt=PATH"),
    (["metrics.names=[fid]", "metrics.feature_extractor=classifier",
      "metrics.classifier_ckpt=/no/such.pt"], "metrics.classifier_ckpt: file not found"),
    (["metrics.names=[toy]"], "'toy' needs a 2D toy dataset"),
    (["data.name=ring2d", "metrics.names=[fid]"], "need image data"),
    (["metrics.names=[toy,toy]", "data.name=ring2d"], "twice"),
    (["metrics.real_split=valid"], "metrics.real_split must be train, val or test"),
    (["metrics.kid_subset_size=0"], "metrics.kid_subset_size must be positive"),
    (["metrics.every_n_epochs=0"], "metrics.every_n_epochs must be positive or null"),
    (["data.name=ring2d", "metrics.names=[toy]", "metrics.curve_names=[fid]"],
     "metrics.curve_names=['fid'] must be a non-empty subset of metrics.names=['toy']"),
    (["data.name=ring2d", "metrics.names=[toy]", "metrics.curve_names=[]"], "non-empty subset"),
    (["metrics.names=[classes]"],
     "'classes' counts a domain classifier's classes; set metrics.feature_extractor=classifier"),
    (["metrics.class_min_share=0"], "metrics.class_min_share must be in (0, 1], got 0"),
    (["metrics.class_min_share=1.5"], "metrics.class_min_share must be in (0, 1], got 1.5"),
    (["data.name=ring2d", "metrics.names=[toy]", "run.monitor=fid"], "needs metrics.names to include 'fid'"),
    (["data.name=ring2d", "metrics.names=[toy]", "run.monitor=modes_captured"],
     "needs metrics.every_n_epochs"),
])
def test_bad_metric_configs(overrides, match):
    with pytest.raises(ConfigError, match=match.replace("(", r"\(").replace("[", r"\[")):
        validation.load([], overrides)


def test_monitored_metric_must_be_on_the_curve(digits_classifier):
    with pytest.raises(ConfigError, match="run.monitor=fid needs metrics.curve_names to include 'fid'"):
        validation.load(["conf/experiment/dcgan_digits.yaml"], [
            "metrics.names=[fid,kid]", "metrics.curve_names=[kid]", "metrics.every_n_epochs=1",
            "metrics.feature_extractor=classifier", f"metrics.classifier_ckpt={digits_classifier}",
            "run.monitor=fid"])


def test_metric_monitor_checkpoint_is_added(tmp_path, digits_classifier):
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lit_gen.run.trainer import build_callbacks

    cfg = validation.load(["conf/experiment/dcgan_digits.yaml"], [
        "metrics.names=[fid]", "metrics.feature_extractor=classifier",
        f"metrics.classifier_ckpt={digits_classifier}", "metrics.every_n_epochs=5", "run.monitor=fid"])
    ckpts = [c for c in build_callbacks(cfg, tmp_path) if isinstance(c, ModelCheckpoint)]
    assert [c.monitor for c in ckpts] == [None, "fid"]
    assert ckpts[1]._every_n_epochs == 5 and ckpts[1]._save_on_train_epoch_end is True
    assert ckpts[0].filename == "last" and not ckpts[1].save_last  # last.ckpt every epoch
