"""Architecture cards of every registered network, built from a real run record of each (issue 28: every timm
and smp card failed on the registry's own defaults, ``activation: null``), and a crafted spec left out, never
fetched.

"Real run record" here means: a real (tiny, ``fast_dev_run``) training run of that network through
``runner.run``, whose ``config.yaml`` the card is built from exactly as the report builds it; the card's
parameter count must equal the ``n_params`` the run recorded of the network it trained."""

from __future__ import annotations

import socket

import pytest
import yaml

from helpers import QUIET_SHORT, TINY_SIGNS, compose
from seg_helpers import TINY_SEG
from visionlab.networks import registry as networks
from visionlab.networks.registry import CLASSIFICATION, REGISTRY
from visionlab.report.render.arch_card import card_from_config, card_spec
from visionlab.run.execute import run

# the smallest spec of each registered network that still is that network (a run each costs seconds)
TINY_SPECS = {
    "seed_cnn": ["model.net.width=0.25"],
    "timm": ["model/net=timm", "model.net.name=mobilenetv3_small_050"],
    "unet": ["model.net.features_start=4", "model.net.depth=3"],
    "smp": [
        "model/net=smp",
        "model.net.arch=Unet",
        "model.net.encoder=resnet18",
        "model.net.encoder_depth=3",
        "+model.net.args.decoder_channels=[16,8,4]",
    ],  # a library argument a card takes (bounded)
}
_SEG_DATA = [o for o in TINY_SEG if not o.startswith("model.net.")]
FEWER_SIGNS = [
    "data.tracks_per_class=2",
    "data.frames_per_track=2",
    "data.test_tracks_per_class=1",
]  # 1 batch


def test_every_registered_network_has_a_tiny_run_here():
    assert set(TINY_SPECS) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(TINY_SPECS))
def test_a_card_of_every_registered_network_from_its_real_run_record(tmp_path, name):
    network = REGISTRY[name]
    if (why := networks.missing_extra(network)) is not None:
        pytest.skip(why)
    if CLASSIFICATION in network.tasks:
        overrides = [*TINY_SIGNS, *QUIET_SHORT, *FEWER_SIGNS, *TINY_SPECS[name]]
    else:
        overrides = ["model=unet", "monitor=val/f1", "monitor_mode=max", *_SEG_DATA, *TINY_SPECS[name]]
    cfg = compose(tmp_path, [*overrides, "logger=none", "+trainer.fast_dev_run=1"])
    summary = run(cfg)
    assert summary["status"] == "completed"
    record = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert record["model"]["net"]["type"] == name
    card = card_from_config(record)
    assert card.total_params == summary["n_params"] > 0
    assert (
        card.left_out == []
    )  # the registry's own defaults (activation: null, pretrained: false) are all used
    assert len(card.layers) > 3 and card.total_macs > 0


def test_a_crafted_timm_spec_is_built_without_its_download_and_says_what_it_left_out(tmp_path, monkeypatch):
    """The issue's URL card: pretrained with a cache folder and a URL overlay, and a depth that took 196 s.
    The card is built from the allow-listed part only; no socket connects, nothing is written to the cache
    folder."""
    pytest.importorskip("timm")
    connects = []
    original = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", lambda self, *a: connects.append(a) or original(self, *a))
    cache = tmp_path / "cache"
    cache.mkdir()
    model = {
        "_target_": "visionlab.tasks.classification.module.ClassificationModule",
        "num_classes": 5,
        "net": {
            "type": "timm",
            "name": "resnet18",
            "pretrained": True,
            "args": {
                "cache_dir": str(cache),
                "depth": 20_000,
                "drop_rate": 0.2,
                "pretrained_cfg_overlay": {"url": "http://127.0.0.1:9/evil.pth"},
            },
            "mystery": 1,
        },
    }
    spec, _, left_out = card_spec(model)
    assert spec == {"type": "timm", "name": "resnet18", "args": {"drop_rate": 0.2}, "pretrained": False}
    assert left_out == [
        "model.net.pretrained=True (a card never fetches weights)",
        "model.net.args.cache_dir",
        "model.net.args.depth",
        "model.net.args.pretrained_cfg_overlay",
        "model.net.mystery",
    ]
    card = card_from_config({"model": model})
    assert (
        card.total_params == 11_179_077 and card.left_out == left_out
    )  # resnet18, 5 classes: depth not taken
    assert connects == [] and list(cache.iterdir()) == []


@pytest.mark.parametrize(
    ("net", "message"),
    [
        ({"type": "timm", "name": "hf-hub:someone/model"}, "is not a plain name"),
        ({"type": "timm", "name": "not_a_timm_model"}, "is not a model timm lists"),
        ({"type": "smp", "encoder": "tu-hf-hub:someone/model"}, "is not a plain name"),
        ({"type": "unet", "depth": 20_000}, r"model\.net\.depth=20000 is outside what a report builds"),
        (
            {"type": "timm", "activation": {"_target_": "os.system"}},
            r"model\.net\.activation=.* has the wrong type",
        ),
        ({"type": "timm", "args": {"drop_rate": 5}}, r"model\.net\.args\.drop_rate=5 is outside"),
    ],
)
def test_a_card_refuses_hub_names_and_unbounded_sizes(net, message):
    pytest.importorskip("timm")
    target = (
        "visionlab.tasks.segmentation.module.SegmentationModule"
        if net["type"] in ("unet", "smp")
        else "visionlab.tasks.classification.module.ClassificationModule"
    )
    with pytest.raises((TypeError, ValueError), match=message):
        card_spec({"_target_": target, "net": net})


def test_a_card_makes_no_socket_connect_whatever_a_library_tries(monkeypatch):
    """Defence in depth: while a card is built, a connect (a library fetching something) fails."""
    from visionlab.report.render import arch_card

    seen = []

    def build_on_meta(spec, io):
        with pytest.raises(OSError, match="never uses the network"):
            socket.create_connection(("127.0.0.1", 9), timeout=1)
        seen.append(spec["type"])
        from torch import nn

        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 28 * 28, 43)).to("meta")

    monkeypatch.setattr(networks, "build_on_meta", build_on_meta)
    before = socket.socket.connect, socket.getaddrinfo
    card = arch_card.card_from_config(
        {"model": {"_target_": "visionlab.tasks.classification.module.ClassificationModule"}}
    )
    assert seen == ["seed_cnn"] and card.total_params == 3 * 28 * 28 * 43 + 43
    assert (socket.socket.connect, socket.getaddrinfo) == before  # restored afterwards
