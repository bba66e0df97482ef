"""Model-randomisation sanity check of the fundus explanations (Adebayo et al. 2018) on real ODIR pairs.

Why: a heat map shown to a clinician as "where the model looked" must depend on the model. This script computes
Grad-CAM (and gradient × input) maps of the bundled ``fundus.odir`` model on real ODIR patients, re-initialises
the weights from the top (classifier) down, cumulatively, recomputes the maps, and reports the Spearman rank
correlation between original and randomised maps (mean ± sd over the maps). A method that passes falls towards 0
as more of the net is randomised; one that stays high is showing the image, not the model.

Run (from the repository root):
    .venv/bin/python bench/explain_sanity.py                         # models/fundus-odir, 8 patients
    .venv/bin/python bench/explain_sanity.py --net odir_test --n 4   # smoke run: a tiny random net

Prints a table and writes ``bench/results/explain_sanity.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.explain import (
    bilateral_eye_model,
    gradcam_bilateral,
    model_randomization_check,
    randomization_groups,
    saliency_2d,
    steps_as_dicts,
)

REPO = Path(__file__).resolve().parents[1]


logger = logging.getLogger("bench.explain_sanity")

DEFAULT_DATA = REPO.parent / "shared" / "data" / "fundus" / "odir"
METHODS = ("gradcam", "saliency")


def load_net(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The trained artifact (default) or, with ``--net``, a registered net with random weights (smoke run)."""
    import torch

    if args.net:
        from vitalens.nets import create_net
        from vitalens.nets.pretrained import normalization_for

        torch.manual_seed(args.seed)
        net = create_net(args.net, pretrained=False).eval()
        mean, std = normalization_for(getattr(net, "backbone", ""), False)
        prep = {"size": args.size or 224, "mean": list(mean), "std": list(std), "age_mean": None, "age_std": None}
        return net, {"source": f"net {args.net} (random init, smoke run)", "prep": prep}
    from vitalens.artifacts import load_model

    net, card = load_model(Path(args.artifact), expected_analyzer="fundus.odir")
    spec = card.input
    prep = {
        "size": args.size or (spec.size[0] if spec.size else 224),
        "mean": spec.mean,
        "std": spec.std,
        "age_mean": spec.extra.get("age_mean"),
        "age_std": spec.extra.get("age_std"),
    }
    return net, {"source": f"artifact {args.artifact} ({card.name} {card.version})", "prep": prep}


def load_pairs(data: Path, n: int, prep: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """``n`` real ODIR patients (seeded choice): preprocessed left/right tensors and normalised age."""
    import torch

    from vitalens.data.odir import OdirDataset

    try:
        from vitalens.data.transforms import FundusPreprocess

        kwargs = {k: prep[k] for k in ("mean", "std") if prep.get(k)}
        pre = FundusPreprocess(size=prep["size"], **kwargs)
    except ImportError:  # pragma: no cover - the transforms module is part of the package
        pre = None
    from PIL import Image

    dataset = OdirDataset(data)
    ages = dataset.ages
    age_mean = prep["age_mean"] if prep["age_mean"] is not None else float(np.mean(ages))
    age_std = prep["age_std"] if prep["age_std"] is not None else float(np.std(ages)) or 1.0
    chosen = np.random.default_rng(seed).choice(len(dataset), size=min(n, len(dataset)), replace=False)
    pairs = []
    for index in sorted(int(i) for i in chosen):
        record = dataset[index]
        tensors = []
        for path in (record.left, record.right):
            image = np.asarray(Image.open(path).convert("RGB"))
            if pre is None:
                raise SystemExit("vitalens.data.transforms.FundusPreprocess is needed to preprocess fundus images")
            tensors.append(pre(image).unsqueeze(0))
        age = torch.tensor([[(record.age_years - age_mean) / age_std]], dtype=torch.float32)
        pairs.append({"id": record.patient_id, "left": tensors[0], "right": tensors[1], "age": age})
    return pairs


def make_explainer(method: str, pairs: list[dict[str, Any]], targets: list[int]):
    """``explain(net) -> maps``: both eyes of every pair, each for its pair's target logit."""

    def explain(net: Any) -> list[np.ndarray]:
        maps = []
        for pair, target in zip(pairs, targets, strict=True):
            for eye in ("left", "right"):
                if method == "gradcam":
                    maps.append(
                        gradcam_bilateral(net, pair["left"], pair["right"], pair["age"], target_index=target, eye=eye)
                    )
                else:
                    model, image = bilateral_eye_model(net, pair["left"], pair["right"], pair["age"], eye)
                    maps.append(saliency_2d(model, image, target))
        return maps

    return explain


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifact", default=str(REPO / "models" / "fundus-odir"), help="fundus.odir artifact")
    parser.add_argument("--net", default=None, help="registered net with random weights instead (e.g. odir_test)")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="ODIR-5K folder in its published layout")
    parser.add_argument("--n", type=int, default=8, help="patients (2 maps each)")
    parser.add_argument("--size", type=int, default=None, help="input side, px (default: the card's)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma list of gradcam, saliency")
    parser.add_argument("--every", type=int, default=1, help="recompute maps after every k-th group")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "explain_sanity.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    import torch

    torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; valid: {', '.join(METHODS)}")
    data = Path(args.data)
    if not data.is_dir():
        print(f"ODIR data not found at {data}: pass --data (skipping)")
        return 2
    if not args.net and not Path(args.artifact).is_dir():
        print(f"no artifact at {args.artifact}: train it first, or run a smoke test with --net odir_test")
        return 2

    net, info = load_net(args)
    pairs = load_pairs(data, args.n, info["prep"], args.seed)
    with torch.no_grad():
        targets = [int(net(p["left"], p["right"], p["age"]).argmax(dim=1)) for p in pairs]
    groups = randomization_groups(net)
    report = groups[:: max(1, args.every)]

    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    for method in methods:
        steps = model_randomization_check(
            net, make_explainer(method, pairs, targets), groups=groups, report=report, seed=args.seed
        )
        results[method] = steps_as_dicts(steps)
    elapsed = time.perf_counter() - t0

    print(f"Model-randomisation sanity check — {info['source']}")
    print(
        f"{len(pairs)} ODIR patients × 2 eyes, input {info['prep']['size']} px, cascading from the classifier "
        f"down ({len(groups)} groups); Spearman ρ(original, randomised): passing maps fall towards 0"
    )
    header = f"{'step':>4}  {'randomised down to':<24}" + "".join(f"{m + ' ρ mean ± sd':>26}" for m in methods)
    print(header)
    print("-" * len(header))
    for i in range(len(results[methods[0]])):
        row = results[methods[0]][i]
        cells = []
        for m in methods:
            r = results[m][i]
            mean = "nan" if r["mean"] is None else f"{r['mean']:+.3f}"
            sd = "nan" if r["sd"] is None else f"{r['sd']:.3f}"
            cells.append(f"{mean} ± {sd} (n={r['n']})".rjust(26))
        print(f"{row['step']:>4}  {row['group']:<24}" + "".join(cells))
    final = {m: results[m][-1]["mean"] for m in methods}
    verdict = {m: (v is not None and not math.isnan(v) and abs(v) < 0.5) for m, v in final.items()}
    shown = ", ".join(f"{m} ρ = {'nan' if final[m] is None else f'{final[m]:+.3f}'}" for m in methods)
    print(f"fully randomised: {shown}; passes (|ρ| < 0.5): {verdict}")
    print(f"({elapsed:.1f} s) {DECISION_SUPPORT_NOTICE}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "bench": "explain_sanity",
        "reference": "Adebayo et al. 2018, Sanity Checks for Saliency Maps (cascading model randomisation)",
        "source": info["source"],
        "data": str(data),
        "patients": [p["id"] for p in pairs],
        "n_maps": 2 * len(pairs),
        "input_size": info["prep"]["size"],
        "targets": targets,
        "groups": groups,
        "seed": args.seed,
        "results": results,
        "fully_randomised_rho": final,
        "passes_abs_rho_below_0_5": verdict,
        "seconds": round(elapsed, 2),
        "torch_threads": args.threads,
        "machine": platform.platform(),
        "notice": DECISION_SUPPORT_NOTICE,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
