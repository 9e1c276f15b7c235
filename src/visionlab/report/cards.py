"""Architecture cards: one per distinct network (identical cards collapse into one that names its variants)."""

from __future__ import annotations

from visionlab.report.arch_card import ArchCard, card_from_config
from visionlab.report.collect import Run
from visionlab.report.escape import code, md
from visionlab.report.render import Heading, Paragraph, Table

CARD_NOTE = (
    "MACs count weight multiply-accumulates (conv: output elements × k·k·cin/groups; linear: in × out) for "
    "one image. The receptive field (pixels, one side) follows r ← r + (k−1)·d·j, j ← j·s through conv and "
    "pooling layers in execution order; activations, normalisation and flatten pass it through, a linear "
    "layer sees the whole input. From the first upsampling layer on (a U-Net's decoder, where skip "
    "connections merge features of different receptive fields) it is shown as —."
)


def _identity(card: ArchCard) -> tuple:
    return card.title, card.input_shape, tuple(map(tuple, card.to_rows())), tuple(sorted(card.traits.items()))


def cards(runs_by_variant: dict[str, list[Run]], warnings: list[str]) -> tuple[list, list[dict]]:
    """The cards section and its numbers (variants, parameters, MACs, traits per distinct network)."""
    built: dict[tuple, tuple[list[str], ArchCard]] = {}
    notes = []
    for variant, runs in sorted(runs_by_variant.items()):
        run = next((r for r in runs if r.config.get("model")), None)
        if run is None:
            notes.append(Paragraph(f"{md(variant)}: no resolved model config, no card."))
            continue
        try:
            card = card_from_config(run.config)
        except Exception as exc:  # noqa: BLE001 - a broken or foreign config must not stop the report
            warnings.append(f"{md(variant)}: architecture card failed: {md(type(exc).__name__)}: {md(exc)}")
            notes.append(Paragraph(f"{md(variant)}: the model could not be built from its config, no card."))
            continue
        built.setdefault(_identity(card), ([], card))[0].append(variant)
    blocks, numbers = [Heading(2, "Architecture cards"), Paragraph(CARD_NOTE), *notes], []
    for variants, card in built.values():
        traits = "; ".join(f"{k}: {md(v)}" for k, v in sorted(card.traits.items()))
        blocks += [Heading(3, ", ".join(md(v) for v in variants)), Paragraph(
            f"{code(card.title)} on a {'×'.join(map(str, card.input_shape))} input: {card.total_params:,} parameters "
            f"({card.trainable_params:,} trainable), {card.total_macs:,} MACs; {traits}."
            + (f" One card for {len(variants)} variants: the same network." if len(variants) > 1 else "")),
            Table(list(card.HEADER), card.to_rows())]
        numbers.append({"variants": variants, "title": card.title, "parameters": card.total_params,
                        "trainable": card.trainable_params, "macs": card.total_macs, "traits": card.traits})
    return blocks, numbers
