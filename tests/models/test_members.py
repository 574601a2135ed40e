"""Ensembles (config `seeds`) and PacGAN (`model.pack`) in the one adversarial loop."""

from __future__ import annotations

import json

import pytest
import torch

from lit_gen import validation
from lit_gen.bench.records import local_records
from lit_gen.errors import ConfigError
from lit_gen.models import build_model
from lit_gen.models.base import Batch
from lit_gen.nets.members import member
from lit_gen.run.checkpoint import load_model, read_checkpoint
from tests.conftest import ROOT, fit, run_cli, tiny_overrides

RING = ROOT / "conf" / "experiment" / "gan_ring2d.yaml"
TOY = ["metrics.names=[toy]", "metrics.toy_samples=200", "model.generator.hidden=[32,32]",
       "model.discriminator.hidden=[32,32]"]


def state(run_dir):
    return read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]


def test_one_member_ensemble_is_bit_identical_to_a_plain_run(tmp_path):
    plain = fit([RING], tiny_overrides(tmp_path / "plain") + TOY + ["seed=3", "data.on_device=true"])
    ens = fit([RING], tiny_overrides(tmp_path / "ens") + TOY + ["seed=3", "seeds=[3]"])
    a, b = state(plain), state(ens)
    assert a.keys() == b.keys()
    for name in a:
        got = b[name][0] if b[name].ndim == a[name].ndim + 1 else b[name]
        assert torch.equal(got, a[name]), name


PENALTY_RUNS = {"none": [], "gp": ["model.penalties=[{name: gp, weight: 1.0}]"],
                "dragan": ["model.penalties=[{name: dragan, weight: 1.0}]"]}


@pytest.mark.parametrize("penalty", ["gp", "dragan"])
def test_same_seed_members_agree_under_penalties_that_draw_noise(tmp_path, penalty):
    """GP's and DRAGAN's draws come from each member's own stream, DRAGAN's std from its own
    chunk: two members of one seed stay equal (under a shared stream they would not)."""
    run = fit([RING], tiny_overrides(tmp_path / "r", epochs=2) + TOY + PENALTY_RUNS[penalty]
              + ["seeds=[5,5,6]"])
    weights = {k: v for k, v in state(run).items() if k.endswith("weight") and v.ndim == 3}
    assert {k.split(".")[0] for k in weights} == {"generator", "discriminator"}
    for name, w in weights.items():
        assert torch.equal(w[0], w[1]) and not torch.allclose(w[0], w[2]), name


def test_members_with_the_same_seed_agree_and_other_seeds_differ(tmp_path):
    run = fit([RING], tiny_overrides(tmp_path / "r", epochs=2) + TOY + ["seeds=[5,5,6]"])
    w = state(run)["generator.net.0.weight"]  # (members, out, in)
    assert w.shape[0] == 3
    assert torch.equal(w[0], w[1]) and not torch.allclose(w[0], w[2])
    metrics = json.loads((run / "metrics.json").read_text())
    members = metrics["members"]
    assert [m["seed"] for m in members] == [5, 5, 6]
    assert members[0]["modes_captured"] == members[1]["modes_captured"] == metrics["modes_captured"]
    # the bench reads each member as a run of its seed
    records = local_records(tmp_path)
    assert sorted(r.config["seed"] for r in records) == [5, 5, 6]
    assert all(r.metrics["modes_captured"] == m["modes_captured"]
               for r, m in zip(sorted(records, key=lambda r: r.name), members, strict=True))


def test_member_k_samples_from_the_checkpoint_and_resumes(tmp_path):
    run = fit([RING], tiny_overrides(tmp_path / "r") + TOY + ["seeds=[1,2]"])
    ckpt = run / "checkpoints" / "last.ckpt"
    model = load_model(ckpt, member=1)
    torch.manual_seed(0)
    ours = model.sample(7)
    plain_g = member(model.generator, 1).eval()
    torch.manual_seed(0)
    z = torch.randn(7, model.latent_dim)
    assert torch.allclose(ours, plain_g(z), atol=1e-6)
    with pytest.raises(ConfigError, match="2 member"):
        load_model(ckpt, member=2)
    out = tmp_path / "s.npz"
    proc = run_cli("lit_gen.sample", "--ckpt", str(ckpt), "--member", "1", "--n", "5",
                   "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    fit([RING], tiny_overrides(run, epochs=2) + TOY + ["seeds=[1,2]", "resume=last"])
    assert read_checkpoint(ckpt)["lit_gen"]["g_steps"] == 2 * 6  # 2 epochs of 6 batches


@pytest.mark.parametrize("penalty", ["none", "dragan"])
def test_an_ensemble_equals_its_members_trained_one_by_one(tmp_path, penalty):
    """Member k of an ensemble tracks a 2-member ensemble holding only its seed twice: the
    batches, noise streams, penalty draws and updates of a member do not depend on the
    others."""
    extra = TOY + PENALTY_RUNS[penalty]
    both = state(fit([RING], tiny_overrides(tmp_path / "a") + extra + ["seeds=[7,8]"]))
    alone = state(fit([RING], tiny_overrides(tmp_path / "b") + extra + ["seeds=[8,8]"]))
    for name, value in both.items():
        if value.ndim and value.shape[0] == 2 and name.endswith(("weight", "bias")):
            torch.testing.assert_close(value[1], alone[name][0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("override, message", [
    (["model.name=acgan", "data.name=digits"], "does not train as an ensemble"),
    (["trainer.strategy=ddp"], "one process"),
])
def test_ensembles_refused_where_they_do_not_apply(override, message):
    with pytest.raises(ConfigError, match=message):
        validation.load([RING], ["seeds=[0,1]", *override])


def packed_model(pack: int, penalties="[]"):
    cfg = validation.load([RING], [f"model.pack={pack}", f"model.penalties={penalties}",
                                   "model.discriminator.hidden=[8]", "data.batch_size=12"])
    return build_model(cfg, {"name": "ring2d", "kind": "toy", "shape": [2], "num_classes": 8})


def test_pack_scores_concatenated_samples_with_a_wider_d():
    torch.manual_seed(0)
    model = packed_model(3)
    d = model.discriminator
    assert d.body[0].in_features == 6  # 3 samples x 2 coordinates
    x = torch.randn(12, 2)
    by_hand = torch.stack([x[3 * i:3 * i + 3].flatten() for i in range(4)])
    with torch.no_grad():
        assert torch.equal(model.discriminate(x), d(by_hand).flatten())
    assert model.discriminate(x[:11]).shape == (3,)  # the remainder is dropped


def test_penalties_act_on_the_packed_inputs():
    torch.manual_seed(0)
    model = packed_model(2, "[{name: r1, gamma: 2.0}]")
    real = torch.randn(8, 2, requires_grad=True)
    logs: dict = {}
    fake = model.generate_fake(8)
    pen = model.penalty_loss(Batch(real, torch.zeros(8, dtype=torch.long)), fake, logs)
    packed = real.detach().reshape(4, 4).requires_grad_(True)
    (g,) = torch.autograd.grad(model.discriminator(packed).sum(), packed)
    # R1: gamma / 2 * E ||grad_x D(x)||^2 over D's (packed) inputs
    assert pen.item() == pytest.approx(1.0 * g.pow(2).sum(1).mean().item(), rel=1e-5)


@pytest.mark.parametrize("override, message", [
    (["model.pack=2", "model.name=acgan", "data.name=digits"], "does not pack"),
    (["model.pack=3", "data.batch_size=16"], "multiple"),
    (["model.pack=0"], ">= 1"),
])
def test_pack_refused_where_it_does_not_apply(override, message):
    with pytest.raises(ConfigError, match=message):
        validation.load([RING], override)
