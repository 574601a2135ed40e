"""Feature extractors for FID / IS / KID / PRC, chosen by `metrics.feature_extractor`.

Each entry knows how to check its config (cheap, at validation), how to resolve its weights
file at the start of a run (the only place that may touch the network), and which
torch-fidelity extractor name, layers and input size it stands for. The torch-fidelity side
(the `FeatureExtractorBase` subclasses) lives in `lit_gen.metrics.fidelity`, which imports
torch-fidelity; this module stays light so config validation does not pay for it.
"""

from __future__ import annotations

import hashlib
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lit_gen.errors import ConfigError
from lit_gen.nets.classifier import read_classifier
from lit_gen.registry import Registry

# torch-fidelity 0.4's URL and file name for the TF-ported Inception-v3 weights
# (torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3).
INCEPTION_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth")
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[1]
INCEPTION_INPUT_SIZE = 299  # torch-fidelity resizes every input to 299x299 inside the net
# torch-fidelity's resize inside its extractors (interpolate_bilinear_2d_like_tensorflow1x)
TF1_BILINEAR = "bilinear, TensorFlow-1.x compatible (torch-fidelity)"
ANTIALIASED_BILINEAR = "bilinear, antialiased (lit_gen.data.base.resize_images)"


@dataclass(frozen=True)
class PreparedExtractor:
    """A feature extractor ready for torch-fidelity: everything the protocol records.

    Args:
        name: lit_gen name (`metrics.feature_extractor`), e.g. "classifier".
        fidelity_name: name registered with torch-fidelity's registry.
        weights_path: local weights file passed as `feature_extractor_weights_path`.
        sha256: sha256 of the weights file (hex).
        input_size: image side the network itself sees (299 for Inception).
        layers: metric -> torch-fidelity feature layer ("fid": "2048", "isc": "logits_unbiased").
        info: extra protocol entries (e.g. the classifier's dataset and test accuracy).
        resize: how images are brought to `input_size` (recorded in the protocol).
        dtype: the extractor's internal dtype (torch-fidelity's feature_extractor_internal_dtype;
            None: its default, float32).
    """

    name: str
    fidelity_name: str
    weights_path: str
    sha256: str
    input_size: int
    layers: dict[str, str]
    info: dict = field(default_factory=dict)
    resize: str = TF1_BILINEAR
    dtype: str | None = None


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hub_inception_path() -> Path:
    """Where torch-fidelity (torch.hub) keeps the downloaded Inception weights."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def network_available(host: str = "github.com", port: int = 443) -> bool:
    """A cheap DNS lookup: False on machines without internet (fails in milliseconds)."""
    try:
        socket.getaddrinfo(host, port)
    except OSError:
        return False
    return True


def inception_offline_message(reason: str) -> str:
    return (f"metrics.feature_extractor=inception-v3-compat needs the Inception-v3 weights, "
            f"{reason}. Download {INCEPTION_URL} and set metrics.inception_weights=/path/to/"
            f"{INCEPTION_FILE} (or place it at {hub_inception_path()}); fully offline, use "
            "metrics.feature_extractor=classifier (python -m lit_gen.train_classifier).")


class InceptionExtractor:
    """torch-fidelity's `inception-v3-compat` (Szegedy et al. 2016, TF-ported weights as in
    Heusel et al. 2017 / Salimans et al. 2016): the extractor published FID/IS numbers use.
    FID/KID/PRC on the 2048-d pool features, IS on the 1008 unbiased logits."""

    fidelity_name = "inception-v3-compat"
    layers = {"fid": "2048", "kid": "2048", "prc": "2048", "isc": "logits_unbiased"}

    def check(self, m) -> None:
        if m.inception_weights is not None:
            if not Path(m.inception_weights).is_file():
                raise ConfigError(f"metrics.inception_weights: file not found: {m.inception_weights}; "
                                  f"download {INCEPTION_URL} and point the key at it")
            return
        if not hub_inception_path().is_file() and not network_available():
            raise ConfigError(inception_offline_message("and this machine has no network"))

    def prepare(self, m) -> PreparedExtractor:
        """Resolve the local weights file, downloading it once when online."""
        if m.inception_weights is not None:
            path = Path(m.inception_weights)
            self.check(m)
        else:
            path = hub_inception_path()
            if not path.is_file():
                _download(INCEPTION_URL, path)
        return PreparedExtractor("inception-v3-compat", self.fidelity_name, str(path),
                                 file_sha256(path), INCEPTION_INPUT_SIZE, dict(self.layers),
                                 dtype=m.extractor_dtype)


def _download(url: str, dest: Path, timeout: float = 60.0, message=inception_offline_message) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as f:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
    except (urllib.error.URLError, OSError) as err:
        tmp.unlink(missing_ok=True)
        raise ConfigError(message(f"and the download failed ({err})")) from None
    tmp.replace(dest)


#: bundled datasets (no download) whose classifier a run trains itself when its file is
#: missing at the default path `.../classifiers/<data>-<size>px.pt` (lit_gen.run.classifiers)
BUNDLED_CLASSIFIER_DATA = ("digits",)


def default_classifier_args(path: str | Path) -> list[str] | None:
    """`lit_gen.train_classifier` arguments that make the classifier file at `path`, when it
    is a default path for a bundled dataset (runs/classifiers/digits-16px.pt), else None."""
    import re

    p = Path(path)
    found = re.fullmatch(r"([a-z0-9_]+)-(\d+)px\.pt", p.name)
    if p.parent.name != "classifiers" or not found or found[1] not in BUNDLED_CLASSIFIER_DATA:
        return None
    return ["--data", found[1], f"data.image_size={found[2]}", "--out", str(p)]


class ClassifierExtractor:
    """A domain classifier trained by `python -m lit_gen.train_classifier` (a small CNN on the
    same data): FID/KID/PRC on its penultimate layer, IS on its logits. Works offline; the
    numbers are comparable only between runs that use the same classifier file (sha256)."""

    fidelity_name = "lit-gen-classifier"
    layers = {"fid": "penultimate", "kid": "penultimate", "prc": "penultimate", "isc": "logits",
              "classes": "logits"}

    def check(self, m) -> None:
        if m.classifier_ckpt is None:
            raise ConfigError("metrics.feature_extractor=classifier needs metrics.classifier_ckpt=PATH; "
                              "train one with `python -m lit_gen.train_classifier --data NAME --out PATH`")
        if not Path(m.classifier_ckpt).is_file() and default_classifier_args(m.classifier_ckpt) is None:
            raise ConfigError(f"metrics.classifier_ckpt: file not found: {m.classifier_ckpt}; train it "
                              "with `python -m lit_gen.train_classifier --data NAME --out PATH`")

    def prepare(self, m) -> PreparedExtractor:

        self.check(m)
        ckpt = read_classifier(m.classifier_ckpt)
        info = {"classifier_dataset": ckpt["data"]["name"],
                "classifier_test_accuracy": ckpt.get("test_accuracy")}
        return PreparedExtractor("classifier", self.fidelity_name, str(m.classifier_ckpt),
                                 file_sha256(m.classifier_ckpt), int(ckpt["in_shape"][-1]),
                                 dict(self.layers), info, resize=ANTIALIASED_BILINEAR)


class WeightsFileExtractor:
    """One of torch-fidelity 0.4's other extractors, run from a local weights file
    (`metrics.extractor_weights`, else the file's name in torch.hub's checkpoints folder,
    where torch.hub / torchvision would have downloaded it).

    - `dinov2-vit-{s,b,l,g}-14` (Oquab et al. 2023; FD-DINOv2 of Stein et al. 2023): the
      normalised class token, 224 px; lit_gen's own ViT (`lit_gen.metrics.vit`) reads the
      official `*_pretrain.pth` state dict, since torch-fidelity would fetch the model code
      from GitHub through torch.hub.
    - `clip-vit-b-32` (Radford et al. 2021): the image embedding, 224 px; torch-fidelity's
      own code reads OpenAI's TorchScript file.
    - `vgg16` (Simonyan & Zisserman 2015; Kynkaanniemi et al. 2019's precision/recall):
      the fc2 ReLU features, 224 px; torchvision's ImageNet state dict.

    Every file is read with `torch.load(weights_only=True)` (CLIP: `torch.jit.load`).

    Args:
        name: the extractor's name (torch-fidelity's).
        fidelity_name: the name registered with torch-fidelity's registry.
        url: where the file is published; its last part is the file name looked for.
        layer: the feature layer every metric uses; dim: its width.
        file_name: when torch.hub stores it under another name than the URL's.
    """

    def __init__(self, name: str, fidelity_name: str, url: str, layer: str, dim: int,
                 input_size: int = 224, file_name: str | None = None):
        self.name, self.fidelity_name, self.url = name, fidelity_name, url
        self.layer, self.dim, self.input_size = layer, dim, input_size
        self.file_name = file_name or url.rsplit("/", 1)[1]
        self.layers = {"fid": layer, "kid": layer, "prc": layer, "isc": layer}

    def default_path(self) -> Path:
        import torch

        return Path(torch.hub.get_dir()) / "checkpoints" / self.file_name

    def message(self, reason: str) -> str:
        return (f"metrics.feature_extractor={self.name} needs its weights file {self.file_name}, "
                f"{reason}. Download {self.url} and set metrics.extractor_weights=/path/to/"
                f"{self.file_name} (or place it at {self.default_path()})")

    def check(self, m) -> None:
        if m.extractor_weights is not None:
            if not Path(m.extractor_weights).is_file():
                raise ConfigError(self.message(f"but metrics.extractor_weights={m.extractor_weights} "
                                               "is not a file"))
            return
        if not self.default_path().is_file() and not network_available():
            raise ConfigError(self.message("and this machine has no network"))

    def prepare(self, m) -> PreparedExtractor:
        self.check(m)
        path = Path(m.extractor_weights) if m.extractor_weights is not None else self.default_path()
        if not path.is_file():
            _download(self.url, path, message=self.message)
        return PreparedExtractor(self.name, self.fidelity_name, str(path), file_sha256(path),
                                 self.input_size, dict(self.layers),
                                 {"feature_dim": self.dim}, dtype=m.extractor_dtype)


DINOV2_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vit{0}14/dinov2_vit{0}14_pretrain.pth"
CLIP_B32_URL = ("https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c"
                "18be219cc2a73407c4526f58eba950af/ViT-B-32.pt")
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"

FEATURE_EXTRACTORS: Registry = Registry("feature extractor")
FEATURE_EXTRACTORS.add("inception-v3-compat", InceptionExtractor())
FEATURE_EXTRACTORS.add("classifier", ClassifierExtractor())
for _size, _dim in (("s", 384), ("b", 768), ("l", 1024), ("g", 1536)):
    FEATURE_EXTRACTORS.add(f"dinov2-vit-{_size}-14", WeightsFileExtractor(
        f"dinov2-vit-{_size}-14", f"lit-gen-dinov2-vit-{_size}-14", DINOV2_URL.format(_size),
        "dinov2", _dim))
FEATURE_EXTRACTORS.add("clip-vit-b-32", WeightsFileExtractor(
    "clip-vit-b-32", "clip-vit-b-32", CLIP_B32_URL, "clip", 512,
    # torch-fidelity's own download name in the hub checkpoints folder
    file_name="clip-vit-b-32-40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af.pt"))
FEATURE_EXTRACTORS.add("vgg16", WeightsFileExtractor("vgg16", "lit-gen-vgg16", VGG16_URL,
                                                     "fc2_relu", 4096))


def prepare_extractor(m) -> PreparedExtractor:
    """The configured extractor with its weights resolved (may download Inception once)."""
    return FEATURE_EXTRACTORS.get(m.feature_extractor, "metrics.feature_extractor").prepare(m)
