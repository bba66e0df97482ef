"""Is a bundled model's test ECE miscalibration or sampling noise? Consistency resampling at the split's own n.

Why: the binned ECE of a perfectly calibrated model is not 0 on a finite set; on ODIR's 50 test patients × 8 labels
(400 pooled decisions, 10 bins) it is several hundredths, so "ECE 0.062" alone cannot be read against an aim of
0.05. Consistency resampling (Bröcker & Smith 2007, ``training.calibration.ece_consistency``) draws labels from the
model's own calibrated probabilities, so the model is calibrated by construction, and recomputes the ECE with the
same bins: its distribution is the ECE a calibrated model shows at this n, and the share at least as large as the
observed ECE is the p-value. Beside it, the patient-bootstrap 95 % interval of the observed ECE (how much the
figure would move on another sample of patients, not whether it is compatible with calibration).

Each model is scored exactly as ``vitalens evaluate`` scores it: the card's preprocessing and calibration, and the
card's own test split (``TrainingTask.build_eval_split``: ODIR the patients the card does not list as train or val;
PTB-XL the card's ``test_folds``, fold 10). The observed ECE must equal the card's ``metrics.ece``.

Usage (from the repository root):
    nice -n 10 .venv/bin/python bench/calibration_consistency.py [--models fundus-odir ecg-ptbxl] [--resamples 2000]
Writes ``bench/results/calibration_consistency.json`` and ``calibration_consistency_reliability.png``; a model or
its data that is absent is skipped with a message. Demonstration figures; decision support, not a diagnosis.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]

logger = logging.getLogger("bench.calibration_consistency")

#: model folder → dataset folder under shared/data (the card's own test split is read from it)
MODELS = {"fundus-odir": Path("fundus") / "odir", "ecg-ptbxl": Path("ecg") / "ptb-xl"}


def _patients(name: str, data: Path, meta: dict[str, list[Any]], n_rows: int) -> np.ndarray | None:
    """Patient id of each scored row, for the cluster bootstrap (PTB-XL: from ``ptbxl_database.csv``)."""
    if "patient_id" in meta:
        return np.asarray(meta["patient_id"])
    if "ecg_id" in meta:
        import pandas as pd

        db = pd.read_csv(data / "ptbxl_database.csv", index_col="ecg_id", usecols=["ecg_id", "patient_id"])
        return db.loc[meta["ecg_id"], "patient_id"].to_numpy()
    logger.warning("%s: no patient ids for %d rows, the bootstrap resamples rows", name, n_rows)
    return None


def score(name: str, artifact: Path, data: Path) -> dict[str, Any]:
    """The card's test split of ``data`` scored as ``vitalens evaluate`` scores it: ``(y, calibrated probs, ...)``."""
    import torch

    from vitalens.artifacts import load_model
    from vitalens.training.calibration import apply_calibration
    from vitalens.training.evaluate import task_for_card
    from vitalens.training.predict import predict_dataset

    t0 = time.perf_counter()
    net, card = load_model(artifact, device="cpu")
    recipe, task = task_for_card(card)
    chosen = task.build_eval_split(data, card, "test")
    with torch.inference_mode():
        logits, y, meta = predict_dataset(net, task, chosen.dataset, "cpu", batch_size=recipe.train.batch_size)
    probs = apply_calibration(card.calibration, logits)
    return {
        "card": card,
        "y": y,
        "probs": probs,
        "patients": _patients(name, data, meta, len(y)),
        "n_bins": recipe.calibration.n_bins,
        "selection": chosen.selection,
        "n_patients": chosen.n_patients,
        "seconds": time.perf_counter() - t0,
    }


def analyse(name: str, s: dict[str, Any], *, resamples: int, seed: int, aim: float) -> dict[str, Any]:
    """Observed ECE, its patient-bootstrap interval and the consistency distribution of one model's test split;
    ``share_above_aim``: how often a perfectly calibrated model would miss the ECE aim at this n (issue #12: 0.05)."""
    from vitalens.training.bootstrap import bootstrap_ci
    from vitalens.training.calibration import ece_consistency, expected_calibration_error, reliability_curve

    y, probs, n_bins = s["y"], s["probs"], s["n_bins"]
    card = s["card"]
    boot = bootstrap_ci(
        lambda t, p: expected_calibration_error(p, t, n_bins), y, probs, clusters=s["patients"], n_boot=2000, seed=seed
    )
    cons = ece_consistency(probs, y, n_bins, n_resamples=resamples, seed=seed)
    card_ece = (card.metrics or {}).get("ece")
    # float32 logits on another machine or batch size move the ECE in the 7th decimal, not more
    if card_ece is not None and abs(cons.observed - card_ece) > 1e-6:
        logger.warning("%s: observed ECE %.6f differs from the card's %.6f", name, cons.observed, card_ece)
    curve = reliability_curve(probs, y, n_bins)
    return {
        "analyzer": card.analyzer,
        "calibration": card.calibration.method,
        "split": "test",
        "selection": s["selection"],
        "n_rows": int(len(y)),
        "n_patients": int(s["n_patients"]) if s["n_patients"] is not None else None,
        "n_labels": int(y.shape[1]),
        "n_decisions": cons.n,
        "n_bins": n_bins,
        "card_ece": card_ece,
        "card_ece_ci95": (card.metrics or {}).get("ece_ci95"),
        "card_ece_abs_diff": None if card_ece is None else abs(cons.observed - card_ece),
        "ece": {"value": cons.observed, **{k: boot[k] for k in ("low", "high", "n_clusters", "n_boot_used")}},
        "ece_if_calibrated": {
            **cons.summary(),
            "median": float(np.median(cons.samples)),
            "level": cons.level,
            "aim": aim,
            "share_above_aim": float(np.mean(cons.samples > aim)),
        },
        "excess_over_calibrated": cons.observed - cons.mean,
        "reliability": {
            **curve,
            "band_low": [None if np.isnan(v) else float(v) for v in cons.band_low],
            "band_high": [None if np.isnan(v) else float(v) for v in cons.band_high],
        },
        "score_seconds": round(s["seconds"], 1),
    }


def plot(results: dict[str, dict[str, Any]], path: Path) -> Path:
    """One reliability diagram per model: observed fraction positive per bin over its 95 % consistency band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vitalens import DECISION_SUPPORT_NOTICE

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 5.5), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items(), strict=True):
        rel = r["reliability"]
        mp = np.asarray(rel["mean_prob"], dtype=float)
        fp = np.asarray(rel["frac_positive"], dtype=float)
        lo = np.asarray([np.nan if v is None else v for v in rel["band_low"]], dtype=float)
        hi = np.asarray([np.nan if v is None else v for v in rel["band_high"]], dtype=float)
        ok = ~np.isnan(mp)
        ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect calibration")
        ax.vlines(mp[ok], lo[ok], hi[ok], colors="0.6", lw=6, alpha=0.6, label="95 % consistency band")
        inside = ok & (fp >= lo) & (fp <= hi)
        ax.plot(mp[ok], fp[ok], "-", color="C0", lw=1)
        ax.plot(mp[inside], fp[inside], "o", color="C0", label="observed (inside band)")
        ax.plot(mp[ok & ~inside], fp[ok & ~inside], "o", color="C3", label="observed (outside band)")
        for x, f, c in zip(mp[ok], fp[ok], np.asarray(rel["count"])[ok], strict=True):
            ax.annotate(f"{int(c)}", (x, f), textcoords="offset points", xytext=(4, -10), fontsize=6, color="0.3")
        c = r["ece_if_calibrated"]
        ax.set(
            xlabel="mean predicted probability (calibrated)",
            ylabel="observed fraction positive",
            xlim=(0, 1),
            ylim=(-0.02, 1.02),
            title=(
                f"{name}: n = {r['n_decisions']} decisions, {r['n_bins']} bins\n"
                f"ECE {r['ece']['value']:.3f}; calibrated at this n {c['mean']:.3f} "
                f"[{c['low']:.3f}, {c['high']:.3f}], p = {c['p_value']:.3f}"
            ),
        )
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7, loc="upper left")
    fig.text(0.01, 0.005, DECISION_SUPPORT_NOTICE + " Bin counts beside the points.", fontsize=5)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _table(results: dict[str, dict[str, Any]]) -> str:
    head = (
        f"{'model':12s} {'n':>5s} {'bins':>4s} {'ECE':>6s} {'bootstrap 95 %':>16s} "
        f"{'calibrated: mean':>16s} {'95 % range':>16s} {'p':>7s}"
    )
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        e, c = r["ece"], r["ece_if_calibrated"]
        boot = f"[{e['low']:.3f}, {e['high']:.3f}]"
        null = f"[{c['low']:.3f}, {c['high']:.3f}]"
        lines.append(
            f"{name:12s} {r['n_decisions']:>5d} {r['n_bins']:>4d} {e['value']:>6.3f} {boot:>16s} "
            f"{c['mean']:>16.3f} {null:>16s} {c['p_value']:>7.4f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_shared = Path(os.environ.get("VITALENS_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--shared", type=Path, default=default_shared, help="The shared data folder.")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--resamples", type=int, default=2000, help="Consistency resamples (surrogate label sets).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aim", type=float, default=0.05, help="ECE aim (issue #12: fundus.odir ECE ≤ 0.05).")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "calibration_consistency.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.shared.is_dir():
        logger.error("shared/data absent: %s not found; nothing to measure", args.shared)
        return 0
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    results: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for name in args.models:
        artifact, data = REPO / "models" / name, args.shared / MODELS[name]
        if not (artifact / "card.json").is_file():
            skipped[name] = f"model {artifact} absent"
        elif not data.is_dir():
            skipped[name] = f"data {data} absent"
        elif json.loads((artifact / "card.json").read_text(encoding="utf-8")).get("metrics", {}).get("split") == (
            "out-of-fold"
        ):  # a k-fold card (frozen-trunk fundus.odir): every patient here was seen in fitting, none is held out
            skipped[name] = (
                "every patient of this sample was seen in fitting (the card's figures are out of fold, its ECE "
                "cross-fitted); the same recipe's held-out calibration: bench/results/fundus_odir.json bundled_split"
            )
        if name in skipped:
            logger.warning("skipping %s: %s", name, skipped[name])
            continue
        logger.info("scoring %s on the card's test split of %s", name, data)
        results[name] = analyse(
            name, score(name, artifact, data), resamples=args.resamples, seed=args.seed, aim=args.aim
        )
    if not results:
        logger.error("no model measured (%s)", "; ".join(f"{k}: {v}" for k, v in skipped.items()))
        return 0
    table = _table(results)
    sys.stdout.write(table + "\n")
    png = plot(results, args.out.with_name("calibration_consistency_reliability.png"))
    out = {
        "bench": "calibration_consistency",
        "method": (
            "consistency resampling (Bröcker & Smith 2007): y* ~ Bernoulli(p) from the calibrated test probabilities, "
            "ECE recomputed with the same equal-width bins and pooling as expected_calibration_error; forecasts held "
            "fixed; p = (1 + #{ECE* >= ECE}) / (1 + R). Observed-ECE interval: patient-cluster bootstrap, percentile."
        ),
        "seed": args.seed,
        "aim": args.aim,
        "n_resamples": args.resamples,
        "n_boot": 2000,
        "level": 0.95,
        "models": results,
        "skipped": skipped,
        "plot": str(png.relative_to(REPO)) if png.is_relative_to(REPO) else str(png),
        "table": table.splitlines(),
        "platform": {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine()},
        "notice": "Demonstration figures; decision support, not a diagnosis.",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
    logger.info("wrote %s and %s", args.out, png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
