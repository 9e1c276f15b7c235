"""Image classification: loss, accuracy metrics and the test-time artefacts for reports. The network is
whatever ``model.net`` names (``networks``); its inputs and classes follow the data's facts."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from visionlab.cluster.ranks import gather_objects
from visionlab.config.checks import at_least, expect, is_number
from visionlab.config.errors import DataError
from visionlab.networks.registry import CLASSIFICATION, NetworkIO, build_network
from visionlab.record import metric_keys as keys
from visionlab.record.folder import VALIDATION, RunFolder
from visionlab.tasks.base_module import VisionModule


class ClassificationModule(VisionModule):
    """Wraps the network ``net`` names (default: the seed CNN); logs train/val/test loss and accuracy, best
    val accuracy and a test confusion matrix. ``num_classes``, ``in_channels`` and ``input_size`` follow the
    data (``${data.num_classes}``, ``${data.channels}``, ``${data.input_size}`` in
    ``conf/model/cnn.yaml``)."""

    task = keys.CLASSIFICATION.task

    def __init__(
        self,
        net: dict | None = None,
        num_classes: int = 43,
        input_size: int = 28,
        in_channels: int = 3,
        max_misclassified: int = 32,
        label_smoothing: float = 0.0,
        **base,
    ):
        super().__init__(**base)
        expect(
            "model.label_smoothing",
            label_smoothing,
            lambda v: is_number(v) and 0 <= v < 1,
            "a number in [0, 1)",
            "model.label_smoothing=0.1",
        )
        expect(
            "model.num_classes",
            num_classes,
            at_least(2),
            "an integer ≥ 2 (it follows data.num_classes)",
            "model.num_classes=10",
        )
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.label_smoothing = label_smoothing
        self.net = build_network(net, NetworkIO(CLASSIFICATION, in_channels, num_classes, input_size))
        self.example_input_array = torch.zeros(2, input_size, input_size, in_channels, dtype=torch.uint8)
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        acc = dict(num_classes=num_classes, average="micro")
        self.train_acc, self.val_acc, self.test_acc = (MulticlassAccuracy(**acc) for _ in range(3))
        self.val_acc_best = MaxMetric()
        self.test_confusion = MulticlassConfusionMatrix(num_classes)
        self.val_confusion = MulticlassConfusionMatrix(num_classes)
        self.max_misclassified = max_misclassified
        self.misclassified: list[tuple[torch.Tensor, int, int]] = []
        self.val_misclassified: list[tuple[torch.Tensor, int, int]] = []
        self.test_results: dict | None = None
        self.val_results: dict | None = (
            None  # at the best val/acc epoch so far: what a run without test reports
        )

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        facts = getattr(datamodule, "facts", None)
        if facts is not None:
            self.check_data_fits(facts, datamodule.description)

    def check_data_fits(self, facts, description: str) -> None:
        """The network was built for ``model.num_classes`` classes of
        ``model.in_channels``×``model.input_size``² images, which follow the data's facts unless overridden: a
        DataError saying which disagrees."""
        model = {
            "num_classes": self.hparams.num_classes,
            "in_channels": self.hparams.in_channels,
            "input_size": self.hparams.input_size,
        }
        data = {
            "num_classes": facts.num_classes,
            "in_channels": facts.channels,
            "input_size": facts.input_size[0]
            if facts.input_size[0] == facts.input_size[1]
            else facts.input_size,
        }
        data_key = {
            "num_classes": "data.num_classes",
            "in_channels": "data.channels",
            "input_size": "data.input_size",
        }
        for key, value in model.items():
            if value != data[key]:
                raise DataError(
                    f"{description} serves {key.replace('_', ' ')} {data[key]!r} but model.{key}={value!r}: "
                    f"the model follows the data (model.{key}: ${{{data_key[key]}}}); drop the "
                    f"model.{key} override."
                )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(self.prepare_images(images))

    def _step(self, batch, label_smoothing: float = 0.0):
        images, labels = batch[0], batch[1]
        logits = self(images)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
        return loss, logits.argmax(dim=1), labels

    def training_step(self, batch, batch_idx):
        loss, preds, labels = self._step(batch, self.label_smoothing)  # evaluation losses stay plain
        self.check_finite(loss)
        self.train_loss(loss.detach(), weight=len(labels))
        self.train_acc(preds, labels)
        self.log(keys.TRAIN_LOSS, self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log(keys.TRAIN_ACC, self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self.val_loss.reset()
        self.val_acc.reset()
        self.val_confusion.reset()
        self.val_misclassified = []

    def validation_step(self, batch, batch_idx):
        loss, preds, labels = self._step(batch)
        self.val_loss(loss, weight=len(labels))
        self.val_acc(preds, labels)
        self.val_confusion(preds, labels)
        self._keep_misclassified(self.val_misclassified, batch, preds, labels)

    def _keep_misclassified(self, kept: list, batch, preds, labels) -> None:
        """The first ``max_misclassified`` mistakes in case order, as (case index, image, true, pred)."""
        images = batch[0]
        index = batch[2] if len(batch) > 2 else None
        wrong = (preds != labels).nonzero().flatten()
        for i in wrong[: self.max_misclassified - len(kept)].tolist():
            case = int(index[i]) if index is not None else len(kept)
            kept.append((case, images[i].cpu(), int(labels[i]), int(preds[i])))

    def _all_misclassified(self, kept: list) -> list:
        """The first mistakes over every rank, in case order (what a single process keeps)."""
        merged = sorted((item for part in gather_objects(kept) for item in part), key=lambda item: item[0])
        return [item[1:] for item in merged[: self.max_misclassified]]

    def on_validation_epoch_end(self) -> None:
        accuracy = float(self.val_acc.compute())
        misclassified = self._all_misclassified(self.val_misclassified)  # every rank takes part in the gather
        if not self.trainer.sanity_checking and (
            self.val_results is None or accuracy > self.val_results["acc"]
        ):
            confusion = self.val_confusion.compute().cpu()
            self.val_results = {
                "acc": accuracy,
                "epoch": self.current_epoch,
                "confusion": confusion,
                "misclassified": misclassified,
            }
        self.log_validation_epoch(
            keys.VAL_LOSS,
            self.val_loss.compute(),
            keys.VAL_ACC,
            self.val_acc.compute(),
            keys.VAL_ACC_BEST,
            self.val_acc_best,
        )

    def on_test_epoch_start(self) -> None:
        self.misclassified = []
        self.test_confusion.reset()

    def test_step(self, batch, batch_idx):
        loss, preds, labels = self._step(batch)
        self.test_loss(loss, weight=len(labels))
        self.test_acc(preds, labels)
        self.test_confusion(preds, labels)
        self.log(keys.TEST_LOSS, self.test_loss, on_step=False, on_epoch=True)
        self.log(keys.TEST_ACC, self.test_acc, on_step=False, on_epoch=True)
        self._keep_misclassified(self.misclassified, batch, preds, labels)

    def on_test_epoch_end(self) -> None:
        confusion = self.test_confusion.compute().cpu()  # summed over ranks by torchmetrics
        per_class = confusion.diag() / confusion.sum(dim=1).clamp(min=1)
        self.test_results = {
            "confusion": confusion,
            "per_class_acc": per_class,
            "misclassified": self._all_misclassified(self.misclassified),
        }

    # ------------------------------------------------------------------ run-record hooks
    # (interfaces.TaskModel)
    def media_callback(self):
        """The media callback registered with the task (``tasks/builtin.py``)."""
        from visionlab.tasks.registry import media_callback

        return media_callback(self.task)

    def summary_section(self) -> dict:
        return {}

    def save_test_artifacts(self, folder: RunFolder) -> None:
        """The confusion matrix (rows = true class), per-class accuracy and mistakes, read by the report."""
        if self.test_results and self.trainer.is_global_zero:
            _save_split(folder, self.test_results["confusion"], self.test_results["misclassified"])

    def save_fit_artifacts(self, folder: RunFolder) -> None:
        """The same on validation at the best val/acc epoch, so a run without a test split can be inspected
        too."""
        if self.val_results and self.trainer.is_global_zero:
            _save_split(folder, self.val_results["confusion"], self.val_results["misclassified"], VALIDATION)


def _save_split(folder: RunFolder, confusion: torch.Tensor, wrong: list, *split: str) -> None:
    matrix = confusion.long().numpy()
    support = matrix.sum(axis=1)
    folder.write_confusion(matrix, *split)
    folder.write_per_class_accuracy(
        [
            {"class": c, "support": int(support[c]), "accuracy": float(matrix[c, c] / max(support[c], 1))}
            for c in range(len(matrix))
        ],
        *split,
    )
    if wrong:
        folder.write_misclassified(
            torch.stack([img for img, _, _ in wrong]).numpy(),
            [t for _, t, _ in wrong],
            [p for _, _, p in wrong],
            *split,
        )
