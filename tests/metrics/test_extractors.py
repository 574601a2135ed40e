"""torch-fidelity 0.4's other extractors from local files: random weights of the right
architecture through the real code path, the protocol, and the offline error."""

from __future__ import annotations

import hashlib

import pytest
import torch

from lit_gen import validation
from lit_gen.errors import ConfigError
from lit_gen.metrics.extractors import FEATURE_EXTRACTORS, prepare_extractor
from lit_gen.metrics.fidelity import FidelityOptions, fidelity_metrics
from lit_gen.metrics.vit import DINOV2_ARCHS, DinoV2ViT

NEW = ("dinov2-vit-s-14", "dinov2-vit-b-14", "dinov2-vit-l-14", "dinov2-vit-g-14",
       "clip-vit-b-32", "vgg16")
# parameters of the published backbones (DINOv2 model card; CLIP ViT-B/32 visual; VGG16)
DINOV2_PARAMS = {"dinov2-vit-s-14": 22.06e6, "dinov2-vit-b-14": 86.58e6,
                 "dinov2-vit-l-14": 304.37e6, "dinov2-vit-g-14": 1136.48e6}


def images(n, seed, size=16):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


@pytest.mark.parametrize("name", NEW)
def test_missing_weights_fail_at_validation_with_file_name_and_place(tmp_path, monkeypatch, name):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr("lit_gen.metrics.extractors.network_available", lambda *a: False)
    ext = FEATURE_EXTRACTORS.get(name)
    with pytest.raises(ConfigError) as err:
        validation.load([], ["data.name=digits", "metrics.names=[fid]", f"metrics.feature_extractor={name}"])
    msg = str(err.value)
    assert ext.file_name in msg and str(tmp_path / "hub" / "checkpoints") in msg
    assert "metrics.extractor_weights" in msg and ext.url in msg
    with pytest.raises(ConfigError, match="is not a file"):
        validation.load([], ["data.name=digits", "metrics.names=[fid]", f"metrics.feature_extractor={name}",
                         f"metrics.extractor_weights={tmp_path / 'none.pth'}"])


@pytest.mark.parametrize("name", sorted(DINOV2_ARCHS))
def test_dinov2_architectures_have_the_published_sizes(name):
    with torch.device("meta"):
        net = DinoV2ViT(name)
    n = sum(p.numel() for p in net.parameters())
    assert n == pytest.approx(DINOV2_PARAMS[name], rel=0.01)
    assert net.dim == FEATURE_EXTRACTORS.get(name).dim


def run_extractor(name, weights, tmp_path, dtype=None):
    over = ["data.name=digits", "metrics.names=[fid,prc,dc]", f"metrics.feature_extractor={name}",
            f"metrics.extractor_weights={weights}"] + ([f"metrics.extractor_dtype={dtype}"] if dtype else [])
    ext = prepare_extractor(validation.load([], over).metrics)
    x = images(6, 0)
    same, proto = fidelity_metrics(x, x.clone(), ["fid", "dc"], ext, FidelityOptions(batch_size=4))
    other, _ = fidelity_metrics(images(6, 1), x, ["fid"], ext, FidelityOptions(batch_size=4))
    assert same["fid"] == pytest.approx(0.0, abs=1e-3 * (1 + other["fid"]))
    assert other["fid"] > 1e-3 * (1 + other["fid"])
    assert same["coverage"] == pytest.approx(1.0)
    assert proto["feature_extractor_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert proto["image_size"] == 224 and proto["extractor_batch_size"] == 4
    assert proto["extractor_device"] == "cpu" and proto["extractor_dtype"] == (dtype or "float32")
    assert "bilinear" in proto["resize"] and proto["feature_dim"] == FEATURE_EXTRACTORS.get(name).dim
    return proto


@pytest.mark.slow
def test_random_dinov2_small_through_torch_fidelity(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "dinov2_vits14_pretrain.pth"
    net = DinoV2ViT("dinov2-vit-s-14")
    for block in net.blocks:  # DINOv2's init (layer scale 1e-5) makes every image look alike
        block.ls1.gamma.data.fill_(1.0)
        block.ls2.gamma.data.fill_(1.0)
    torch.save(net.state_dict(), weights)
    proto = run_extractor("dinov2-vit-s-14", weights, tmp_path, dtype="float64")
    assert proto["feature_layers"] == {"fid": "dinov2", "dc": "dinov2"}


@pytest.mark.slow
def test_random_vgg16_through_torch_fidelity(tmp_path):
    import torchvision

    torch.manual_seed(0)
    weights = tmp_path / "vgg16-397923af.pth"
    torch.save(torchvision.models.vgg16().state_dict(), weights)
    run_extractor("vgg16", weights, tmp_path)


@pytest.mark.slow
def test_random_clip_vit_b_32_through_torch_fidelity(tmp_path):
    """A TorchScript file of CLIP's layout (visual ViT-B/32 + text_projection), as OpenAI's."""
    from torch_fidelity.feature_extractor_clip import VisionTransformer

    class ClipFile(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = VisionTransformer(224, 32, 768, 12, 12, 512)
            self.text_projection = torch.nn.Parameter(torch.randn(512, 512))

        def forward(self, x):
            return x

    torch.manual_seed(0)
    weights = tmp_path / "ViT-B-32.pt"
    torch.jit.save(torch.jit.script(ClipFile()), str(weights))
    run_extractor("clip-vit-b-32", weights, tmp_path)
