"""Architecture cards: one full card (the baseline's network), then for every other distinct network only how
it differs from that one (identical networks collapse into one entry that names its variants).

A difference is said in words when only a layer type changed (``18 layers ReLU → ELU``; shapes, parameters and
MACs unchanged) or only a trait (the upsampling mode); layers whose shape, parameters or MACs differ, and
inserted or removed layers, are listed in a short table."""

from __future__ import annotations

import difflib

from visionlab.report.collect import Run
from visionlab.report.render.arch_card import ArchCard, LayerRow, card_from_config
from visionlab.report.render.document import Heading, Paragraph, Table
from visionlab.report.render.escape import code, md

CARD_NOTE = (
    "MACs count weight multiply-accumulates (conv: output elements × k·k·cin/groups; linear: in × out) for "
    "one image. The receptive field (pixels, one side) follows r ← r + (k−1)·d·j, j ← j·s through conv and "
    "pooling layers in execution order; activations, normalisation and flatten pass it through, a linear "
    "layer sees the whole input. From the first upsampling layer on (a U-Net's decoder, where skip "
    "connections merge features of different receptive fields) it is shown as —. Cards are built from each "
    "variant's config on PyTorch's meta device (shapes only, no weights)."
)


def _identity(card: ArchCard) -> tuple:
    return (
        card.title,
        card.input_shape,
        tuple(map(tuple, card.to_rows())),
        tuple(sorted(card.traits.items())),
        tuple(card.left_out),
    )


MAX_LEFT_OUT = 6  # keys named per card; more are counted


def _left_out(card: ArchCard) -> str:
    if not card.left_out:
        return ""
    named = ", ".join(code(key) for key in card.left_out[:MAX_LEFT_OUT])
    more = len(card.left_out) - MAX_LEFT_OUT
    return (
        f" Left out of this card (a card is built from an allow-listed, bounded spec only, and never fetches "
        f"anything): {named}" + (f" and {more} more" if more > 0 else "") + "."
    )


def _summary(card: ArchCard) -> str:
    traits = "; ".join(f"{k}: {md(v)}" for k, v in sorted(card.traits.items()))
    return (
        f"{code(card.title)} on a {'×'.join(map(str, card.input_shape))} input: {card.total_params:,} "
        f"parameters ({card.trainable_params:,} trainable), {card.total_macs:,} MACs; "
        f"{traits}.{_left_out(card)}"
    )


def _shape(row: LayerRow) -> str:
    return "×".join(map(str, row.output_shape))


def _numbers(row: LayerRow) -> tuple:
    return row.output_shape, row.params, row.macs, row.receptive_field


def differences(base: ArchCard, other: ArchCard) -> tuple[list[str], list[list[str]]]:
    """Sentences for type-only and trait changes, and rows for layers that differ in numbers, were inserted or
    were removed (``layer``, ``type``, ``output shape``, ``parameters``, ``MACs``, ``vs the full card``)."""
    words, rows, renamed = [], [], {}
    matcher = difflib.SequenceMatcher(
        a=[r.kind for r in base.layers], b=[r.kind for r in other.layers], autojunk=False
    )
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        pairs = list(zip(base.layers[a0:a1], other.layers[b0:b1]))
        if op == "equal" or (op == "replace" and a1 - a0 == b1 - b0):
            for old, new in pairs:
                if old.kind != new.kind and _numbers(old) == _numbers(new):
                    renamed[(old.kind, new.kind)] = renamed.get((old.kind, new.kind), 0) + 1
                elif _numbers(old) != _numbers(new) or old.kind != new.kind:
                    was = [
                        f"{_shape(old)}" if old.output_shape != new.output_shape else "",
                        f"{old.params:,} parameters" if old.params != new.params else "",
                        f"{old.macs:,} MACs" if old.macs != new.macs else "",
                        f"receptive field {old.receptive_field}"
                        if old.receptive_field != new.receptive_field
                        else "",
                    ]
                    rows.append(
                        [
                            md(new.name),
                            md(new.kind if old.kind == new.kind else f"{old.kind} → {new.kind}"),
                            _shape(new),
                            f"{new.params:,}",
                            f"{new.macs:,}",
                            "was " + ", ".join(w for w in was if w) if any(was) else "type only",
                        ]
                    )
            continue
        rows += [
            [md(r.name), md(r.kind), _shape(r), f"{r.params:,}", f"{r.macs:,}", "inserted"]
            for r in other.layers[b0:b1]
        ]
        rows += [[md(r.name), md(r.kind), _shape(r), "", "", "removed"] for r in base.layers[a0:a1]]
    words += [
        f"{count} layer{'s' * (count != 1)} {md(old)} → {md(new)} (same shapes, parameters and MACs)"
        for (old, new), count in sorted(renamed.items())
    ]
    for key in sorted(set(base.traits) | set(other.traits)):
        if base.traits.get(key) != other.traits.get(key):
            words.append(f"{key}: {md(base.traits.get(key, 'none'))} → {md(other.traits.get(key, 'none'))}")
    return words, rows


def cards(
    runs_by_variant: dict[str, list[Run]], warnings: list[str], first: str | None = None
) -> tuple[list, list[dict]]:
    """The cards section and its numbers (variants, parameters, MACs, traits per distinct network). ``first``:
    the variant whose network gets the full card (the baseline), else the first alphabetically."""
    built: dict[tuple, tuple[list[str], ArchCard]] = {}
    notes, cache = [], {}
    order = sorted(runs_by_variant, key=lambda v: (v != first, v))
    for variant in order:
        run = next((r for r in runs_by_variant[variant] if isinstance(r.config.get("model"), dict)), None)
        if run is None:
            notes.append(Paragraph(f"{md(variant)}: no resolved model config, no card."))
            continue
        try:
            card = card_from_config(run.config, cache=cache)
        except Exception as exc:  # noqa: BLE001 - a broken or foreign config must not stop the report
            warnings.append(f"{md(variant)}: architecture card failed: {md(type(exc).__name__)}: {md(exc)}")
            notes.append(Paragraph(f"{md(variant)}: the model could not be built from its config, no card."))
            continue
        built.setdefault(_identity(card), ([], card))[0].append(variant)
    blocks, numbers = [Heading(2, "Architecture cards"), Paragraph(CARD_NOTE), *notes], []
    groups = list(built.values())
    for i, (variants, card) in enumerate(groups):
        same = f" One card for {len(variants)} variants: the same network." if len(variants) > 1 else ""
        numbers.append(
            {
                "variants": variants,
                "title": card.title,
                "parameters": card.total_params,
                "trainable": card.trainable_params,
                "macs": card.total_macs,
                "traits": card.traits,
                **({"left_out": card.left_out} if card.left_out else {}),
            }
        )
        blocks.append(Heading(3, ", ".join(md(v) for v in variants)))
        if i == 0:
            blocks += [Paragraph(_summary(card) + same), Table(list(card.HEADER), card.to_rows())]
            continue
        base_names = ", ".join(md(v) for v in groups[0][0])
        words, rows = differences(groups[0][1], card)
        change = (
            f" Differences from {base_names}'s card: {'; '.join(words)}."
            if words
            else f" Differences from {base_names}'s card:"
            if rows
            else ""
        )
        blocks.append(
            Paragraph(_summary(card) + same + change + (" Layers that differ:" if rows and words else ""))
        )
        if rows:
            blocks.append(
                Table(["layer", "type", "output shape", "parameters", "MACs", f"vs {base_names}"], rows)
            )
    return blocks, numbers
