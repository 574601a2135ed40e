"""`python -m lit_gen.train_classifier`: accuracy, file format, use as a feature extractor."""

from __future__ import annotations

import pytest
import torch

from lit_gen import validation
from lit_gen.data import build_datamodule
from lit_gen.nets.classifier import DomainClassifier, load_classifier, read_classifier


def test_digits_classifier_accuracy_and_file(digits_classifier):
    ckpt = read_classifier(digits_classifier)
    assert 0.9 < ckpt["test_accuracy"] <= 1.0
    assert ckpt["data"]["name"] == "digits" and ckpt["in_shape"] == [1, 8, 8]
    # recompute the test accuracy independently from the saved file
    net = load_classifier(digits_classifier)
    x, y = build_datamodule(validation.load([], ["data.name=digits"]).data).split("test")
    with torch.no_grad():
        acc = int((net(x).argmax(1) == y).sum()) / len(y)
    assert acc == pytest.approx(ckpt["test_accuracy"], abs=1e-9)


def test_extractor_takes_uint8_rgb_and_resizes(digits_classifier):
    """Digits as torch-fidelity feeds them (uint8, 3 channels) are classified as well as the
    float originals; 16 px digits are resized to the classifier's 8 px (some blur: train the
    classifier at the generator's resolution for real evaluations)."""
    from lit_gen.metrics.fidelity import ClassifierFeatureExtractor, to_uint8_rgb

    ext = ClassifierFeatureExtractor("lit-gen-classifier", ["penultimate", "logits"],
                                     feature_extractor_weights_path=str(digits_classifier))
    stored = read_classifier(digits_classifier)["test_accuracy"]
    for size, floor in ((8, stored - 0.01), (16, 0.6)):
        data = validation.load([], ["data.name=digits", f"data.image_size={size}"]).data
        x, y = build_datamodule(data).split("test")
        with torch.no_grad():
            feats, logits = ext(to_uint8_rgb(x))
        assert feats.shape == (len(x), 128) and logits.shape == (len(x), 10)
        acc = int((logits.argmax(1) == y).sum()) / len(y)
        assert floor < acc <= 1.0, (size, acc)


@pytest.mark.parametrize("size, blocks", [(8, 2), (16, 3), (28, 3), (32, 4)])
def test_classifier_shapes(size, blocks):
    net = DomainClassifier((3, size, size), 7, base_channels=8, feature_dim=16)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.body) == blocks - 1
    out = net(torch.zeros(2, 3, size, size))
    assert out.shape == (2, 7) and net.features(torch.zeros(2, 3, size, size)).shape == (2, 16)


def test_cli_errors(tmp_path, capsys):
    from lit_gen.train_classifier import main

    assert main(["--data", "ring2d", "--out", str(tmp_path / "c.pt"), "--epochs", "1"]) == 2
    assert "no labelled images" in capsys.readouterr().err
    assert main(["--data", "digits", "trainer.max_epochs=1"]) == 2
    assert "only data.* overrides" in capsys.readouterr().err
    assert main(["--data", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    from lit_gen.errors import CheckpointError

    with pytest.raises(CheckpointError, match="lit_gen.train_classifier"):
        read_classifier(bad)
    assert not (tmp_path / "c.pt").exists()


def test_classifier_file_names_its_splits_and_data(digits_classifier):
    ckpt = read_classifier(digits_classifier)
    assert ckpt["splits"] == {"train": 1350, "val": 150, "test": 297}
    assert "1,797 grey 8x8 digits" in ckpt["data_description"]


def test_classifier_threads_follow_the_run_policy(digits_classifier):
    """Thread count changes float sums: the classifier records the count the run policy
    chose (1 for this net on any machine without OMP_NUM_THREADS), and training used it."""
    from lit_gen.run.threads import available_cpus, choose_threads

    ckpt = read_classifier(digits_classifier)
    net = load_classifier(digits_classifier)
    params = sum(p.numel() for p in net.parameters())
    threads, source = choose_threads(None, params, available_cpus())
    assert ckpt["threads"]["intra_op_threads"] == threads
    assert (ckpt["threads"]["source"], ckpt["threads"]["model_parameters"]) == (source, params)
    assert choose_threads(None, params, 64, env={})[0] == 1  # small net: 1 thread even on 64 cpus
