"""``visionlab-export <run folder or checkpoint> --format onnx|torchscript``: the trained model as one file
that needs no visionlab: it takes uint8 images (N, H, W, C) of any size and does the resizing and
normalisation inside.

Inside the file (``Deployable``): the images as floats in [0, 1]; classification: the centre square (as
image_folder's training did), resized (bilinear) to ``data.image_size`` (32 for GTSRB-style data), the centre
``data.crop``, normalised, the network, softmax → ``probabilities`` (N, K). Segmentation: resized to
``data.image_size`` (when the run set one), normalised, the network (with the test-time flips when the run
tested with them), the logits resized back to each input's size → ``masks`` (N, H, W) uint8 (0/255 for a
binary model, the class index for K classes) and ``probabilities`` (N, H, W) float (the foreground's, or the
winning class's).

At the model's own input size the resize is the identity and the file gives the model's answers; other sizes
are resized with bilinear interpolation (training resized files with PIL/OpenCV: close, not identical).
ONNX is written by torch's TorchScript-based exporter (``dynamo=False``: no onnxscript needed), opset 17, with
N, H and W dynamic; TorchScript is the same wrapper traced (its shape arithmetic recorded, so any size).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from visionlab.config.errors import ConfigError
from visionlab.inference.loading import InputFacts, LoadedModel

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
OPSET = 17
GTSRB_SIDE = 32


class Deployable(nn.Module):
    """uint8 (N, H, W, C) images → (probabilities,) or (masks, probabilities); see the module's docstring."""

    def __init__(self, net: nn.Module, facts: InputFacts, segmentation: bool, flips: bool = False):
        super().__init__()
        self.net = net
        self.segmentation = segmentation
        self.fit = facts.reader == "fit"
        self.size = int(facts.image_size or (GTSRB_SIDE if not segmentation else 0))
        self.crop = int(facts.crop or 0)
        self.flips = flips
        self.logit_threshold = float(torch.logit(torch.tensor(facts.threshold, dtype=torch.float64)))
        channels = facts.channels
        self.register_buffer("mean", _per_channel(facts.mean, channels))
        self.register_buffer("std", _per_channel(facts.std, channels))

    def forward(self, images: torch.Tensor):
        x = images.permute(0, 3, 1, 2).float() / 255.0
        height, width = x.shape[2], x.shape[3]
        if self.segmentation:
            if self.size > 0:
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
            x = (x - self.mean) / self.std
            logits = self._segment(x)
            if self.size > 0:
                logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
            if logits.shape[1] == 1:
                masks = (logits[:, 0] > self.logit_threshold).to(torch.uint8) * 255
                return masks, torch.sigmoid(logits[:, 0])
            probabilities = torch.softmax(logits, dim=1)
            return torch.argmax(logits, dim=1).to(torch.uint8), torch.max(probabilities, dim=1)[0]
        if self.fit:  # image_folder: the centre square first (ImageOps.fit)
            side = torch.minimum(torch.as_tensor(height), torch.as_tensor(width))
            top, left = (height - side) // 2, (width - side) // 2
            x = x[:, :, top : top + side, left : left + side]
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        if self.crop > 0:
            offset = (self.size - self.crop) // 2
            x = x[:, :, offset : offset + self.crop, offset : offset + self.crop]
        x = (x - self.mean) / self.std
        return (torch.softmax(self.net(x), dim=1),)

    def _segment(self, x: torch.Tensor) -> torch.Tensor:
        if not self.flips:
            return self.net(x)
        # the test's flips: the mean probability over identity, horizontal, vertical and both, as its logit
        mean = (
            torch.sigmoid(self.net(x))
            + torch.sigmoid(self.net(x.flip(3))).flip(3)
            + torch.sigmoid(self.net(x.flip(2))).flip(2)
            + torch.sigmoid(self.net(x.flip([2, 3]))).flip([2, 3])
        )
        return torch.logit(mean / 4.0, eps=1e-6)


def _per_channel(values, channels: int) -> torch.Tensor:
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float32)
    return (
        tensor.expand(channels).clone().view(1, channels, 1, 1)
        if tensor.numel() == 1
        else tensor.view(1, -1, 1, 1)
    )


def deployable(loaded: LoadedModel) -> Deployable:
    """The loaded model's network in the wrapper that does what training did to images."""
    facts = loaded.facts
    if facts.contrast_norm != "none":
        raise ConfigError(
            f"data.contrast_norm={facts.contrast_norm}: the per-image contrast normalisation is not part "
            "of an exported file; export a model trained with data.contrast_norm=none."
        )
    if facts.task == "segmentation" and facts.tta not in ("none", "flips"):
        raise ConfigError(f"model.tta={facts.tta}: not one the exported file can do (none, flips).")
    net = loaded.module.net.float().eval()
    return Deployable(net, facts, facts.task == "segmentation", facts.tta == "flips").eval()


def example_input(loaded: LoadedModel, batch: int = 2) -> torch.Tensor:
    """A uint8 batch at the model's own input size (the size training served)."""
    facts = loaded.facts
    side = int(facts.image_size or (GTSRB_SIDE if facts.task == "classification" else 64))
    return torch.zeros(batch, side, side, facts.channels, dtype=torch.uint8)


def output_names(loaded: LoadedModel) -> list[str]:
    return ["masks", "probabilities"] if loaded.facts.task == "segmentation" else ["probabilities"]


def export(loaded: LoadedModel, fmt: str, out: Path) -> Path:
    """Write the deployable model to ``out`` in ``fmt``; returns the file."""
    import warnings

    model = deployable(loaded)
    example = example_input(loaded)
    names = output_names(loaded)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter(
            "ignore"
        )  # the tracer's notes on shape arithmetic (dynamic axes keep it general)
        if fmt == "onnx":
            axes = {"images": {0: "batch", 1: "height", 2: "width"}}
            axes.update(
                {
                    name: (
                        {0: "batch"}
                        if name == "probabilities" and len(names) == 1
                        else {0: "batch", 1: "height", 2: "width"}
                    )
                    for name in names
                }
            )
            torch.onnx.export(
                model,
                (example,),
                str(out),
                dynamo=False,
                input_names=["images"],
                output_names=names,
                dynamic_axes=axes,
                opset_version=OPSET,
            )
        else:
            torch.jit.save(torch.jit.trace(model, (example,), check_trace=False), str(out))
    return out


def log_to_wandb(file: Path, loaded: LoadedModel) -> str:
    """With W&B online: the file as a model artifact of the run that trained it (its own W&B run when the run
    folder names one); offline or without W&B: the ``wandb`` command that uploads it later, or why not."""
    import os

    from visionlab.record.folder import RunFolder

    mode = os.environ.get("WANDB_MODE", "")
    folder = loaded.source.folder
    run_id = RunFolder(folder).read_wandb_id() if folder is not None else None
    if mode in ("offline", "disabled", "dryrun") or run_id is None:
        return (
            "W&B: not logged ("
            + ("no W&B run recorded in the run folder" if run_id is None else f"WANDB_MODE={mode}")
            + f"); to log it later: wandb artifact put --type model --name {file.stem} {file}"
        )
    try:
        import wandb

        settings = ((loaded.source.config or {}).get("logger") or {}).get("wandb") or {}
        project, entity = (
            settings.get(key) if isinstance(settings.get(key), str) else None for key in ("project", "entity")
        )
        run = wandb.init(id=run_id, resume="allow", project=project, entity=entity, job_type="export")
        artifact = wandb.Artifact(
            name=f"model-{run_id}", type="model", metadata={"format": file.suffix.lstrip(".")}
        )
        artifact.add_file(str(file))
        run.log_artifact(artifact)
        run.finish()
        return f"W&B: logged as model artifact model-{run_id} of run {run_id}"
    except Exception as exc:  # noqa: BLE001 - the file is written; W&B only adds a copy
        return f"W&B: not logged ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
