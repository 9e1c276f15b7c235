"""The course U-Net and the segmentation module's losses and per-image scores."""

import numpy as np
import pytest
import torch

from seg_helpers import f1_iou
from visionlab.networks.registry import SEGMENTATION, NetworkIO, build_network
from visionlab.networks.unet import UNet
from visionlab.record import metric_keys as keys
from visionlab.tasks.segmentation.module import SegmentationModule, soft_dice_loss
from visionlab.tasks.segmentation.scores import per_image_scores


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def expected_unet_params(c_in: int, f: int, depth: int, transposed: bool) -> int:
    """Hand count: double conv = two 3×3 convs with bias; up = 1×1 conv (or 2×2 transposed conv) halving."""

    def double(a, b):
        return (9 * a * b + b) + (9 * b * b + b)

    feats = [f * 2**i for i in range(depth)]
    total = double(c_in, feats[0]) + sum(double(feats[i], feats[i + 1]) for i in range(depth - 1))
    for i in range(depth - 1):
        c = feats[i + 1]
        total += (4 if transposed else 1) * c * (c // 2) + c // 2  # upsampling conv
        total += double(c, feats[i])  # after concatenation: c//2 skip + c//2 upsampled = c inputs
    return total + feats[0] + 1  # 1×1 head to one channel


def unet(**args):
    """The course U-Net for one input channel, conf/model/net/unet.yaml's defaults, then ``args``."""
    return build_network({"type": "unet", **args}, NetworkIO(SEGMENTATION, 1, 1))


def test_course_unet_parameter_counts():
    assert n_params(unet()) == 28_941_633 == expected_unet_params(1, 64, 5, transposed=False)
    assert n_params(unet(up_mode="nearest")) == 28_941_633
    assert (
        n_params(unet(up_mode="transposed")) == 31_030_593 == expected_unet_params(1, 64, 5, transposed=True)
    )
    assert n_params(unet(features_start=32, depth=4)) == expected_unet_params(1, 32, 4, transposed=False)


@pytest.mark.parametrize("up_mode", ["bilinear", "nearest", "transposed"])
@pytest.mark.parametrize("activation,batch_norm", [("relu", False), ("elu", True)])
def test_same_size_out_for_every_variant(up_mode, activation, batch_norm):
    net = UNet(1, 1, features_start=4, depth=4, up_mode=up_mode, activation=activation, batch_norm=batch_norm)
    assert net(torch.rand(2, 1, 64, 48)).shape == (2, 1, 64, 48)
    assert sum(isinstance(m, torch.nn.ELU) for m in net.modules()) == (
        4 * 2 + 3 * 2 if activation == "elu" else 0
    )


def test_sizes_not_divisible_by_two_to_the_depth_minus_one_are_refused():
    with pytest.raises(ValueError, match=r"divisible by 8, got 60×64"):
        unet(features_start=2, depth=4)(torch.rand(1, 1, 60, 64))
    with pytest.raises(ValueError, match="model.net.up_mode='bicubic'"):
        unet(up_mode="bicubic")


def test_per_image_f1_and_iou_match_a_numpy_reference_including_empty_masks():
    rng = np.random.default_rng(0)
    masks = (rng.random((5, 16, 16)) > 0.6).astype(np.uint8)
    preds = (rng.random((5, 16, 16)) > 0.5).astype(np.uint8)
    masks[3] = 0
    preds[3] = 0  # both empty → 1.0 by definition
    masks[4] = 0  # empty mask, non-empty prediction → 0.0
    scores = per_image_scores(torch.from_numpy(preds), torch.from_numpy(masks))
    f1, iou = scores[keys.CASE_F1], scores[keys.CASE_IOU]
    expected = np.array([f1_iou(m, p) for m, p in zip(masks, preds)])
    np.testing.assert_allclose(f1.numpy(), expected[:, 0], rtol=1e-6)
    np.testing.assert_allclose(iou.numpy(), expected[:, 1], rtol=1e-6)
    assert f1[3] == 1.0 and iou[3] == 1.0 and f1[4] == 0.0
    j = float(iou[0])
    assert float(f1[0]) == pytest.approx(2 * j / (1 + j), rel=1e-6)  # F1 = Dice = 2J/(1+J)
    # the background class is the same score with the labels swapped
    background = np.array([f1_iou(1 - m, 1 - p) for m, p in zip(masks, preds)])
    np.testing.assert_allclose(scores[keys.CASE_F1_BG].numpy(), background[:, 0], rtol=1e-6)
    np.testing.assert_allclose(scores[keys.CASE_IOU_BG].numpy(), background[:, 1], rtol=1e-6)
    # the trivial all-foreground prediction on the same masks
    trivial = np.array([f1_iou(m, np.ones_like(m))[0] for m in masks])
    np.testing.assert_allclose(scores[keys.CASE_F1_TRIVIAL].numpy(), trivial, rtol=1e-6)
    assert scores[keys.CASE_F1_TRIVIAL][4] == 0.0  # empty mask: all-foreground is all wrong


def test_scores_of_a_single_image_and_of_the_all_foreground_prediction():
    """A split of one image works (torchmetrics' samplewise stat scores squeezed N=1 away); predicting every
    pixel foreground scores the trivial F1 and a background F1 of 0 (1.0 when the mask has no background)."""
    mask = torch.zeros(1, 8, 8, dtype=torch.uint8)
    mask[0, :6] = 1  # 48 foreground, 16 background pixels
    scores = per_image_scores(torch.ones_like(mask), mask)
    assert {name: value.shape for name, value in scores.items()} == {name: (1,) for name in keys.CASE_SCORES}
    assert scores[keys.CASE_F1].item() == pytest.approx(96 / 112) == scores[keys.CASE_F1_TRIVIAL].item()
    assert scores[keys.CASE_F1_BG].item() == 0.0 and scores[keys.CASE_IOU_BG].item() == 0.0
    full = per_image_scores(torch.ones(1, 4, 4), torch.ones(1, 4, 4))
    assert full[keys.CASE_F1_BG].item() == 1.0 == full[keys.CASE_F1_TRIVIAL].item()


def test_losses_and_uint8_nhwc_input():
    model = SegmentationModule({"type": "unet", "features_start": 4, "depth": 3}, loss="bce_dice")
    images = torch.randint(0, 256, (2, 32, 32, 1), dtype=torch.uint8)
    masks = torch.randint(0, 2, (2, 32, 32), dtype=torch.uint8)
    loss, preds, _, scores = model._step((images, masks))
    f1, iou = scores[keys.CASE_F1], scores[keys.CASE_IOU]
    logits = model(images).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, masks[:, None].float())
    assert loss.item() == pytest.approx(
        (bce + soft_dice_loss(logits, masks[:, None].float())).item(), rel=1e-5
    )
    assert preds.shape == (2, 32, 32) and set(preds.unique().tolist()) <= {0, 1}
    assert f1.shape == iou.shape == (2,)
    perfect = soft_dice_loss(torch.full((1, 1, 4, 4), 50.0), torch.ones(1, 1, 4, 4))
    assert perfect.item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="model.loss='focal'"):
        SegmentationModule(loss="focal")


def test_flip_tta_is_the_mean_probability_of_the_flipped_predictions_and_flip_invariant():
    torch.manual_seed(0)
    model = SegmentationModule({"type": "unet", "features_start": 4, "depth": 3}, tta="flips").eval()
    images = torch.randint(0, 256, (2, 32, 32, 1), dtype=torch.uint8)
    with torch.no_grad():
        x = model.prepare_images(images)
        manual = torch.stack(
            [
                torch.sigmoid(model.net(x)),
                torch.sigmoid(model.net(x.flip(3))).flip(3),
                torch.sigmoid(model.net(x.flip(2))).flip(2),
                torch.sigmoid(model.net(x.flip((2, 3)))).flip((2, 3)),
            ]
        ).mean(0)
        tta = torch.sigmoid(model.tta_logits(images, ((), (3,), (2,), (2, 3))))
        torch.testing.assert_close(tta, manual, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(tta, torch.sigmoid(model(images)), atol=1e-4)  # it changes the prediction
        # the flip-averaged prediction of a mirrored image is the mirrored prediction
        mirrored = torch.sigmoid(model.tta_logits(images.flip(2), ((), (3,), (2,), (2, 3))))
        torch.testing.assert_close(mirrored, tta.flip(3), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="model.tta='rot90'"):
        SegmentationModule(tta="rot90")
