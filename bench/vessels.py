"""DRIVE vessel segmentation: our U-Net beside the classical filters and the second human observer, same 20 images.

Protocol (the DRIVE literature's): the 20 test photographs, the first observer's manual segmentation as the
truth, every pixel inside the shipped field-of-view mask counted; accuracy, AUC, sensitivity, specificity and F1
pooled over all pixels, and F1 also as the mean over images (the form of the bob.ip.binseg table the issue
quotes). Thresholds are never chosen on the test images: the net's comes from its card (F1-maximising on the 4
held-out training images); each classical filter's is the F1-maximising threshold on the 20 training images.
Confidence intervals: percentile bootstrap over images (2,000 draws). The second observer's binary masks are
scored the same way (its "AUC" is (sensitivity + specificity) / 2, the AUC of a binary rule).

Artery/vein separation is unmeasured on real images (no A/V truth here); on the synthetic DRIVE twin, whose
renderer knows the arteries, the share of zone-B vessels labelled right is reported.

Run:
    .venv/bin/python bench/vessels.py                                   # models/fundus-vessels
    .venv/bin/python bench/vessels.py --artifact runs/fundus-vessels/artifact

Prints a table and writes ``bench/results/vessels.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.data.drive import DriveDataset
from vitalens.training.seg_metrics import ScoreHistogram, best_f1_threshold, bootstrap_pixel_metrics, pixel_metrics
from vitalens.training.tasks.fundus_vessels import prepare_drive_image
from vitalens.vessels.classical import classical_vesselness

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "fundus" / "DRIVE"
DEFAULT_ARTIFACT = REPO / "models" / "fundus-vessels"

logger = logging.getLogger("bench.vessels")

#: Published figures on the same 20 test images (first observer as truth).
PUBLISHED = {
    "2nd observer (bob.ip.binseg table, mean F1 over images)": {"f1_mean": 0.788},
    "U-Net (bob.ip.binseg, Laibacher & Anjos; mean F1 over images)": {"f1_mean": 0.775},
    "U-Net (Zhuang 2018 LadderNet table; pooled)": {
        "f1": 0.8142,
        "sensitivity": 0.7537,
        "specificity": 0.9820,
        "accuracy": 0.9531,
        "auc": 0.9755,
    },
    "LadderNet (Zhuang 2018; pooled)": {
        "f1": 0.8202,
        "sensitivity": 0.7856,
        "specificity": 0.9810,
        "accuracy": 0.9561,
        "auc": 0.9793,
    },
}

KEYS = ("accuracy", "auc", "sensitivity", "specificity", "f1")


def _row(name: str, hists: list[ScoreHistogram], threshold: float, n_boot: int, *, binary: bool = False) -> dict:
    out = bootstrap_pixel_metrics(hists, threshold, n_boot=n_boot)
    per_image = [pixel_metrics(h, threshold)["f1"] for h in hists]
    if binary:  # a 0/1 rule: its ROC is one point, AUC = (sens + spec) / 2
        for k in ("value", "low", "high"):
            out["auc"][k] = float("nan")
        m = pixel_metrics(ScoreHistogram.pool(hists), threshold)
        out["auc"]["value"] = (m["sensitivity"] + m["specificity"]) / 2
    return {
        "method": name,
        "threshold": threshold,
        "n_images": len(hists),
        **{k: out[k] for k in KEYS},
        "f1_mean_over_images": {"value": float(np.mean(per_image)), "sd": float(np.std(per_image, ddof=1))},
    }


def _load_net(artifact: Path) -> tuple[Any, Any]:
    from vitalens.artifacts import load_model

    net, card = load_model(artifact, expected_analyzer="fundus.vessels", device="cpu")
    return net.eval(), card


def av_on_twin(tmp: Path) -> dict[str, Any]:
    """Share of zone-B vessel segments whose artery/vein label matches the twin's renderer."""
    from vitalens.synth.odir import EyeFindings, render_fundus_layers
    from vitalens.vessels.biomarkers import measure_vessel_biomarkers
    from vitalens.vessels.graph import trace_vessel_tree

    rng = np.random.default_rng(7)
    right = total = 0
    for i in range(8):
        layers = render_fundus_layers(rng, 512, "right" if i % 2 else "left", EyeFindings())
        vessels = ((layers.arteries > 0.5) | (layers.veins > 0.5)) & layers.fov
        b = measure_vessel_biomarkers(layers.image, layers.fov, vessels.astype(np.float32), 0.5)
        segs = {s.index: s for s in trace_vessel_tree(vessels).segments}
        for v in b.zone_vessels:
            rr, cc = segs[v.segment].path_rc.T
            truth = layers.arteries[rr, cc].mean() > layers.veins[rr, cc].mean()
            right += int(truth == v.artery)
            total += 1
    return {"images": 8, "zone_b_vessels": total, "correct": right, "accuracy": right / total if total else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "vessels.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(2)
    from vitalens.vessels.segment import net_vessel_probability

    start = time.time()
    net, card = _load_net(args.artifact)
    prep = {"fov_diameter_px": card.input.extra.get("fov_diameter_px"), "clip_limit": card.input.extra["clip_limit"]}
    train = [prepare_drive_image(r, **prep) for r in DriveDataset(args.data, "training")]
    test_records = list(DriveDataset(args.data, "test"))
    test = [prepare_drive_image(r, **prep) for r in test_records]
    second = [prepare_drive_image(r, observer=2, **prep)["vessels"] for r in test_records]

    rows = []
    hists, seconds = [], []
    t_net = []
    for im in test:
        t0 = time.perf_counter()
        prob = net_vessel_probability(net, im["channel"], flip_average=bool(card.input.extra.get("flip_average", True)))
        t_net.append(time.perf_counter() - t0)
        hists.append(ScoreHistogram.from_pixels(im["vessels"], prob, im["fov"]))
    rows.append(_row(f"ours: {card.architecture.name}", hists, card.thresholds["vessel"], args.n_boot))
    for method in ("sato", "frangi"):
        train_h = [
            ScoreHistogram.from_pixels(
                im["vessels"], classical_vesselness(im["channel"], im["fov"], method=method), im["fov"]
            )
            for im in train
        ]
        t = best_f1_threshold(ScoreHistogram.pool(train_h))
        test_h = [
            ScoreHistogram.from_pixels(
                im["vessels"], classical_vesselness(im["channel"], im["fov"], method=method), im["fov"]
            )
            for im in test
        ]
        rows.append(_row(f"classical: {method} (threshold on the training images)", test_h, t, args.n_boot))
    for im, s2 in zip(test, second, strict=True):
        seconds.append(ScoreHistogram.from_pixels(im["vessels"], s2.astype(np.float32), im["fov"]))
    rows.append(_row("2nd human observer (measured here)", seconds, 0.5, args.n_boot, binary=True))

    av = av_on_twin(REPO / "runs")
    result = {
        "bench": "vessels",
        "notice": DECISION_SUPPORT_NOTICE,
        "data": "DRIVE test split (20 images), first observer, field-of-view pixels",
        "artifact": str(args.artifact),
        "card_metrics_split": card.metrics.get("split"),
        "rows": rows,
        "published": PUBLISHED,
        "artery_vein": {
            "method": "per-image 2-means on width-residualised red/green contrast (heuristic)",
            "real_images": "unmeasured: no artery/vein ground truth in shared/data (RITE / AV-DRIVE absent)",
            "synthetic_twin": av,
        },
        "net_seconds_per_image": {"mean": float(np.mean(t_net)), "max": float(np.max(t_net))},
        "machine": {"platform": platform.platform(), "processor": platform.processor() or "unknown"},
        "wall_s": time.time() - start,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    def cell(m: dict[str, float]) -> str:
        return f"{m['value']:.4f} [{m['low']:.4f}, {m['high']:.4f}]" if np.isfinite(m["low"]) else f"{m['value']:.4f}"

    print(f"DRIVE test, n = 20 images, pixels inside the FOV, 95 % bootstrap CI over images ({args.n_boot} draws)")
    print(
        f"{'method':58s} {'accuracy':>26s} {'AUC':>26s} {'sensitivity':>26s} {'specificity':>26s} {'F1':>26s} "
        f"{'mean F1':>14s}"
    )
    for r in rows:
        fm = r["f1_mean_over_images"]
        print(
            f"{r['method'][:58]:58s} "
            + " ".join(f"{cell(r[k]):>26s}" for k in KEYS)
            + f" {fm['value']:.3f}±{fm['sd']:.3f}"
        )
    print("published:")
    for name, vals in PUBLISHED.items():
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in vals.items()))
    print(
        f"artery/vein on the synthetic twin: {av['correct']}/{av['zone_b_vessels']} zone-B vessels right; "
        "real images: unmeasured"
    )
    print(f"net: {result['net_seconds_per_image']['mean']:.2f} s per image on this CPU; wrote {args.out}")
    print(DECISION_SUPPORT_NOTICE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
