"""Galleries: correct and misclassified examples of a single-image model with their Grad-CAM overlays, as a page.

Why: a reviewer judges a classifier as much by *where* it looks and *what it gets wrong* as by its AUROC (the
designs' galleries). The gallery scores a dataset split through the artifact exactly as the analyzer would (the
card's preprocessing, link and calibration), picks per true class up to ``per_class`` correct and ``per_class``
misclassified images (the most confident of each, so the worst errors show), and writes for each the original, the
Grad-CAM of the predicted class mapped back onto it, and a caption; ``index.html`` lays them out, self-contained
beside its PNGs (no script, no network).
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.errors import InputError

__all__ = ["GalleryItem", "build_gallery"]

logger = logging.getLogger(__name__)


@dataclass
class GalleryItem:
    """One example on the page."""

    sample_id: str
    truth: str
    predicted: str
    probability: float
    correct: bool
    image: str
    overlay: str


def _pick(y: np.ndarray, pred: np.ndarray, conf: np.ndarray, per_class: int) -> list[int]:
    """Per true class: the most confident correct and the most confident wrong predictions, ``per_class`` each."""
    chosen: list[int] = []
    for c in np.unique(y):
        for correct in (True, False):
            idx = np.flatnonzero((y == c) & ((pred == y) == correct))
            chosen.extend(idx[np.argsort(-conf[idx])][:per_class].tolist())
    return chosen


def build_gallery(
    artifact: Path,
    *,
    data: Path,
    out: Path,
    split: str = "test",
    per_class: int = 3,
    alpha: float = 0.45,
) -> Path:
    """Write ``out/index.html`` and its PNGs for ``split`` of the dataset at ``data``; returns the page.

    Raises:
        InputError: the artifact is not a single-image model, or the split is empty.
    """
    import torch
    from PIL import Image

    from vitalens.artifacts import load_model, predict_probabilities
    from vitalens.data.image_preprocess import ImagePreprocess
    from vitalens.explain.gradcam import resolve_layer
    from vitalens.explain.overlay import overlay_png
    from vitalens.training.predict import predict_dataset
    from vitalens.training.problems import Problem, torch_class_probabilities
    from vitalens.training.recipe import Recipe
    from vitalens.training.tasks import get_task

    net, card = load_model(Path(artifact), device="cpu")
    config = card.input.extra.get("preprocess")
    if not config or len(card.input.extra.get("inputs", [])) != 1:
        raise InputError(f"{card.name} is not a single-image model; galleries need one", field="artifact")
    recipe = Recipe.load(dict(card.recipe), overrides={"task.augment": False})
    task = get_task(card.analyzer, recipe)
    bundle = task.build_data(Path(data))
    if split == "all":
        from torch.utils.data import ConcatDataset

        dataset: Any = ConcatDataset([bundle.train, bundle.val, bundle.test])
        parts = [bundle.train, bundle.val, bundle.test]
    else:
        dataset = bundle.split(split)
        parts = [dataset]
    if len(dataset) == 0:
        raise InputError(f"the {split} split of {data} is empty", field="split")
    raw, y1, meta = predict_dataset(net, task, dataset, "cpu", batch_size=recipe.train.batch_size)
    probs = predict_probabilities(card, raw)
    y, pred = y1.argmax(axis=1), probs.argmax(axis=1)
    conf = probs[np.arange(len(pred)), pred]
    chosen = _pick(y, pred, conf, per_class)
    source = parts[0].source
    index_of = [int(i) for part in parts for i in part.indices]
    pre = ImagePreprocess.from_config(config)
    problem = Problem(kind=card.output.problem, head=card.output.head, n_classes=len(card.labels))
    layer = resolve_layer(net, getattr(net, "target_layer", None))
    out = Path(out)
    (out / "img").mkdir(parents=True, exist_ok=True)
    items: list[GalleryItem] = []
    from pytorch_grad_cam import GradCAM

    with GradCAM(model=net, target_layers=[layer]) as cam:
        for n, i in enumerate(chosen):
            image = source.image(index_of[i], "L" if pre.grayscale else "RGB")
            k = int(pred[i])

            def target(output: torch.Tensor, k: int = k) -> torch.Tensor:
                out_ = output if output.ndim == 2 else output[None]
                return torch.log(torch_class_probabilities(problem, out_)[:, k].clamp_min(1e-8)).sum()

            heat = cam(input_tensor=pre(image)[None], targets=[target])[0]
            heat = pre.geometry(image).to_input(np.asarray(heat, np.float32))
            stem = f"{n:03d}"
            Image.fromarray(image).save(out / "img" / f"{stem}.png")
            (out / "img" / f"{stem}_cam.png").write_bytes(overlay_png(image, heat, alpha=alpha))
            items.append(
                GalleryItem(
                    sample_id=str(meta["sample_id"][i]),
                    truth=card.labels[int(y[i])],
                    predicted=card.labels[k],
                    probability=float(conf[i]),
                    correct=bool(y[i] == k),
                    image=f"img/{stem}.png",
                    overlay=f"img/{stem}_cam.png",
                )
            )
    summary = {
        "analyzer": card.analyzer,
        "model": card.name,
        "split": split,
        "n": int(len(y)),
        "accuracy": float((pred == y).mean()),
        "demonstration": card.demonstration,
        "items": [item.__dict__ for item in items],
    }
    (out / "gallery.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    page = out / "index.html"
    page.write_text(_html(card, summary, items), encoding="utf-8")
    logger.info("gallery of %d examples written to %s", len(items), page)
    return page


def _html(card: Any, summary: dict[str, Any], items: list[GalleryItem]) -> str:
    esc = html.escape
    names = {c: card.name_of(c) for c in card.labels}
    sections = []
    for correct, title in ((True, "Correct"), (False, "Misclassified")):
        cells = [
            f'<figure class="{"ok" if it.correct else "bad"}">'
            f'<img src="{esc(it.image)}" alt="input {esc(it.sample_id)}">'
            f'<img src="{esc(it.overlay)}" alt="Grad-CAM of {esc(names[it.predicted])}">'
            f"<figcaption><b>true</b> {esc(names[it.truth])} · <b>predicted</b> {esc(names[it.predicted])} "
            f"({it.probability:.2f})<br><small>{esc(it.sample_id)}</small></figcaption></figure>"
            for it in items
            if it.correct == correct
        ]
        sections.append(f"<h2>{title} ({len(cells)})</h2><div class=grid>{''.join(cells) or '<p>none</p>'}</div>")
    demo = "<p class=demo>Demonstration model: trained on few or synthetic data; not for clinical use.</p>"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Gallery — {esc(card.name)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}"
        ".grid{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0;width:420px;border:3px solid #ccc;padding:4px}"
        "figure.ok{border-color:#2a7}figure.bad{border-color:#c33}figure img{width:205px;height:auto}"
        ".demo{color:#a40;font-weight:bold}.notice{color:#555}</style></head><body>"
        f"<h1>{esc(card.analyzer)} · {esc(card.name)} {esc(card.version)}</h1>"
        f"<p>{esc(summary['split'])} split, n = {summary['n']}, accuracy {summary['accuracy']:.3f}. Each example: the "
        "input and the Grad-CAM of the predicted class on it; the most confident correct and wrong per true class."
        f"</p>{demo if summary['demonstration'] else ''}{''.join(sections)}"
        f"<p class=notice>{esc(DECISION_SUPPORT_NOTICE)}</p></body></html>\n"
    )
