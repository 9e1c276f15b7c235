import pytest
import torch

from visionlab.networks.registry import CLASSIFICATION, NetworkIO, build_network
from visionlab.tasks.classification.module import ClassificationModule


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def seed_cnn(**args):
    """The seed CNN for 3×28×28 inputs, 43 classes: conf/model/net/seed_cnn.yaml's defaults, then ``args``."""
    return build_network({"type": "seed_cnn", **args}, NetworkIO(CLASSIFICATION, 3, 43, 28))


def test_seed_cnn_has_87403_parameters_and_512_features():
    net = seed_cnn()
    assert n_params(net) == 87_403
    linear = next(m for m in net.modules() if isinstance(m, torch.nn.Linear))
    assert linear.in_features == 512 and linear.out_features == 43


def test_batchnorm_variant_adds_exactly_the_bn_affine_parameters():
    assert n_params(seed_cnn(batch_norm=True)) == 87_403 + 2 * (64 + 32 + 32)
    assert n_params(seed_cnn(activation="elu")) == 87_403


def test_classifier_takes_uint8_nhwc_and_returns_logits():
    module = ClassificationModule()
    logits = module(torch.randint(0, 256, (5, 28, 28, 3), dtype=torch.uint8))
    assert logits.shape == (5, 43) and torch.isfinite(logits).all()


def test_unknown_activation_names_the_key():
    with pytest.raises(ValueError, match="model.net.activation='swish2'"):
        seed_cnn(activation="swish2")
