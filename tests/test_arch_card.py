"""Architecture card numbers against hand-worked values (parameters, MACs, receptive fields)."""

import pytest
from torch import nn

from visionlab.networks.registry import CLASSIFICATION, SEGMENTATION, NetworkIO, build_network
from visionlab.report.render.arch_card import UNDEFINED, WHOLE_INPUT, architecture_card


def _rows(card, kind):
    return [row for row in card.layers if row.kind == kind]


def test_single_5x5_conv_has_1216_parameters():
    # 16 filters × (5·5·3 weights + 1 bias) = 16 × 76 = 1,216
    card = architecture_card(nn.Conv2d(3, 16, 5, padding=2), (3, 128, 128))
    assert card.total_params == 1216
    assert card.layers[0].output_shape == (16, 128, 128)
    assert card.layers[0].receptive_field == 5


def _three_conv_pool_blocks():
    layers = []
    for cin in (3, 16, 16):
        layers += [nn.Conv2d(cin, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
    return layers


def test_three_conv_pool_blocks_and_linear_head():
    # conv params: 1,216 + 2 × 16·(5·5·16 + 1) = 1,216 + 2 × 6,416 = 14,048
    convs = architecture_card(nn.Sequential(*_three_conv_pool_blocks()), (3, 128, 128))
    assert convs.total_params == 14048
    assert convs.output_shape == (16, 16, 16)  # 128 → 64 → 32 → 16
    # linear 16·16·16 = 4,096 → 10: 40,960 + 10 = 40,970; total 14,048 + 40,970 = 55,018
    model = nn.Sequential(*_three_conv_pool_blocks(), nn.Flatten(), nn.Linear(16 * 16 * 16, 10))
    card = architecture_card(model, (3, 128, 128))
    assert card.total_params == 55018
    assert sum(row.params for row in card.layers) == 55018
    assert card.layers[-1].receptive_field == WHOLE_INPUT
    # with pools between: r = 5 → 6 (pool, j 1→2) → 6 + 4·2 = 14 → 16 (pool, j 2→4) → 16 + 4·4 = 32
    assert [row.receptive_field for row in _rows(card, "Conv2d")] == [5, 14, 32]
    assert [row.receptive_field for row in _rows(card, "MaxPool2d")] == [6, 16, 36]


def test_stacked_stride_1_convs_receptive_field():
    # r = 1 + 4 = 5 → 5 + 4 = 9 → 9 + 4 = 13 (stride 1: j stays 1); activations pass it through
    model = nn.Sequential(*[m for _ in range(3) for m in (nn.Conv2d(3, 3, 5, padding=2), nn.ReLU())])
    card = architecture_card(model, (3, 32, 32))
    assert [row.receptive_field for row in card.layers] == [5, 5, 9, 9, 13, 13]


def test_strided_convs_shapes_macs_receptive_fields():
    model = nn.Sequential(
        nn.Conv2d(3, 64, 5, stride=2, padding=2),
        nn.Conv2d(64, 128, 5, stride=2, padding=2),
        nn.Conv2d(128, 256, 5, stride=2, padding=2),
    )
    card = architecture_card(model, (3, 128, 128))
    assert [row.output_shape for row in card.layers] == [(64, 64, 64), (128, 32, 32), (256, 16, 16)]
    # MACs = output elements × k·k·cin: 64·64·64 × 75; 128·32·32 × 1,600; 256·16·16 × 3,200
    assert [row.macs for row in card.layers] == [19_660_800, 209_715_200, 209_715_200]
    assert card.total_macs == 19_660_800 + 2 * 209_715_200
    # r = 1 + 4·1 = 5 (j → 2); 5 + 4·2 = 13 (j → 4); 13 + 4·4 = 29
    assert [row.receptive_field for row in card.layers] == [5, 13, 29]


def test_dilation_enters_receptive_field():
    # a 3×3 conv with dilation 2 covers 5 pixels: r = 1 + 2·2·1 = 5; then a 3×3 conv: 5 + 2 = 7
    model = nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2), nn.Conv2d(1, 1, 3))
    assert [row.receptive_field for row in architecture_card(model, (1, 16, 16)).layers] == [5, 7]


def test_seed_cnn_numbers():
    card = architecture_card(
        build_network({"type": "seed_cnn"}, NetworkIO(CLASSIFICATION, 3, 43, 28)), (3, 28, 28)
    )
    linear = _rows(card, "Linear")[0]
    assert card.layers[-2].output_shape == (512,)  # 32 × 4 × 4 features into the linear layer
    assert linear.params == 512 * 43 + 43
    assert card.total_params == 87403
    # conv5 → 5, conv5 → 9, pool → 10 (j → 2), conv3 → 10 + 2·2 = 14, pool → 16 (j → 4)
    assert [row.receptive_field for row in _rows(card, "Conv2d")] == [5, 9, 14]
    assert card.layers[-2].receptive_field == 16


class _TinyUNet(nn.Module):
    """Two-level U-Net shape: the decoder joins upsampled and skip features."""

    def __init__(self):
        super().__init__()
        self.enc1 = nn.Conv2d(1, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.enc2 = nn.Conv2d(64, 128, 3, padding=1)
        self.up = nn.ConvTranspose2d(128, 64, 2, stride=2)
        self.dec = nn.Conv2d(128, 64, 3, padding=1)
        self.head = nn.Conv2d(64, 1, 1)

    def forward(self, x):
        import torch

        skip = self.enc1(x)
        x = self.up(self.enc2(self.pool(skip)))
        return self.head(self.dec(torch.cat([x, skip], dim=1)))


def test_unet_second_conv_and_decoder_receptive_field():
    card = architecture_card(_TinyUNet(), (1, 32, 32))
    by_name = {row.name: row for row in card.layers}
    assert by_name["enc2"].params == 73856  # 128 × (3·3·64 + 1)
    assert by_name["enc2"].receptive_field == 8  # 3 → 4 (pool, j → 2) → 4 + 2·2 = 8
    assert by_name["up"].receptive_field == UNDEFINED
    assert by_name["head"].receptive_field == UNDEFINED
    assert by_name["head"].output_shape == (1, 32, 32)


def test_course_unet_card():
    unet = build_network({"type": "unet"}, NetworkIO(SEGMENTATION, 1, 1))
    card = architecture_card(unet, (1, 256, 256))
    by_name = {row.name: row for row in card.layers}
    assert by_name["downs.0.1.0"].params == 73856  # second level's first conv 64 → 128: 128 × (3·3·64 + 1)
    assert card.total_params == 28941633
    assert card.output_shape == (1, 256, 256)
    # encoder: 3, 5 → pool 6 (j 2) → 10, 14 → pool 16 (j 4) → 24, 32; decoder after the first Upsample: —
    assert [by_name[n].receptive_field for n in ("inc.0", "inc.2", "downs.0.1.0", "downs.1.1.2")] == [
        3,
        5,
        10,
        32,
    ]
    assert by_name["head"].receptive_field == UNDEFINED


@pytest.mark.parametrize("bn", [False, True])
def test_card_from_run_config(bn):
    """A record from before model.net, read as ``RunFolder.read_config`` reads it (in today's layout)."""
    from visionlab.record.former_names import current_names
    from visionlab.report.render.arch_card import card_from_config

    cfg = {
        "model": {
            "_target_": "visionlab.tasks.classification.module.ClassificationModule",
            "batch_norm": bn,
            "input_size": 28,
            "in_channels": 3,
            "num_classes": 43,
        }
    }
    card = card_from_config(current_names(cfg))
    assert card.input_shape == (3, 28, 28)
    assert card.total_params == 87403 + (bn and 2 * (64 + 32 + 32))
