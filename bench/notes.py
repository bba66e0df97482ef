"""Clinical-text extraction (``notes.symptoms``) against the project's evaluation set, beside a NegEx-style baseline.

What is measured, on ``bench/data/notes_eval.jsonl`` (sentences written by the project with gold entities and
modifiers; see ``bench/data/README.md``):

* entities: precision, recall and F1 per type (symptom, finding, condition, medication, body site), strict (same
  characters and type) and lenient (overlapping span, same type);
* modifiers (negated, historical, family, hypothetical, uncertain) on the lenient-matched entities;
* the zero-shot note → label mapping (MiniLM): calibrated on the dev split, AUROC, Brier score, ECE and P/R/F1 at the
  threshold on the test split, beside the lexicon's own concept → label links.

The baseline is the design a hackathon would ship: the same term list matched by regular expressions and the NegEx
algorithm's fixed five-word window of trigger words per modifier (Chapman et al., 2001), with no termination, no
pseudo-triggers and no list rule. Both run in the same process on the same sentences. 95 % confidence intervals are
percentile bootstraps over sentences (1,000 resamples). The rules were written against the dev split; the test split
is reported as held out.

Run (from the repository root):
    HF_HUB_OFFLINE=1 .venv/bin/python bench/notes.py [--fit-calibration]

Prints tables and writes ``bench/results/notes.json``; ``--fit-calibration`` also rewrites the bundled zero-shot
calibration (``src/vitalens/notes/data/zero_shot_calibration.json``) from the dev split.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.notes import EntityType, Modifier, extract_entities, load_lexicon

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "bench" / "data" / "notes_eval.jsonl"
CALIBRATION = REPO / "src" / "vitalens" / "notes" / "data" / "zero_shot_calibration.json"
logger = logging.getLogger("bench.notes")

TYPES = [t.value for t in EntityType]
MODIFIERS = [m.value for m in Modifier]
#: The analyzers whose labels the zero-shot mapping is scored on (their bundled cards give the names).
LABEL_SOURCES = {"fundus.odir": "fundus-odir", "ecg.ptbxl": "ecg-ptbxl"}
#: Labels that name no condition a note would mention ("Normal", "Other abnormalities").
NON_SPECIFIC = {"N", "O", "NORM"}

Entity = dict[str, Any]


# ----------------------------------------------------------------------------------------------- the baseline
class NegExBaseline:
    """Regex term matching + NegEx-style fixed windows of trigger words (the peer recipe)."""

    WINDOW = 5
    PRE = {
        "negated": [
            "no",
            "not",
            "denies",
            "denied",
            "without",
            "negative for",
            "free of",
            "no evidence of",
            "absence of",
            "never",
        ],
        "historical": ["history of", "hx of", "h/o", "pmh", "previous", "prior", "s/p", "status post"],
        "family": [
            "family history",
            "mother",
            "father",
            "brother",
            "sister",
            "aunt",
            "uncle",
            "grandmother",
            "grandfather",
            "son",
            "daughter",
            "mum",
        ],
        "hypothetical": ["if", "should", "risk of", "screening for", "evaluate for", "return if"],
        "uncertain": [
            "possible",
            "probable",
            "likely",
            "suspected",
            "?",
            "rule out",
            "r/o",
            "cannot exclude",
            "may be",
            "query",
        ],
    }
    POST = {
        "negated": ["ruled out", "absent", "unlikely", "was negative", "resolved", "denied"],
        "uncertain": ["suspected", "cannot be excluded", "possible", "likely"],
        "family": ["in the family"],
    }

    def __init__(self) -> None:
        lexicon = load_lexicon()
        phrases: list[tuple[str, str, str, bool]] = []
        for c in lexicon.concepts:
            phrases += [(p, c.type.value, c.name, False) for p in c.phrases()]
            phrases += [(a, c.type.value, c.name, True) for a in c.abbreviations]
        phrases.sort(key=lambda p: -len(p[0]))
        self.terms = {(p.lower() if not cs else p): (t, n) for p, t, n, cs in phrases}
        ci = [re.escape(p) for p, _, _, cs in phrases if not cs]
        cs = [re.escape(p) for p, _, _, cs in phrases if cs]
        self.ci = re.compile(r"(?<![\w-])(" + "|".join(ci) + r")(?![\w-])", re.IGNORECASE)
        self.cs = re.compile(r"(?<![\w-])(" + "|".join(cs) + r")(?![\w-])")

    @staticmethod
    def _words(text: str) -> list[str]:
        return re.findall(r"[\w/]+|\?", text.lower())

    def _has_trigger(self, words: list[str], triggers: Iterable[str]) -> bool:
        joined = " " + " ".join(words) + " "
        return any(f" {t} " in joined for t in triggers)

    def __call__(self, text: str) -> list[Entity]:
        spans: list[tuple[int, int, str, str]] = []
        for regex, lower in ((self.ci, True), (self.cs, False)):
            for m in regex.finditer(text):
                key = m.group(1).lower() if lower else m.group(1)
                if key in self.terms and not any(s < m.end() and m.start() < e for s, e, _, _ in spans):
                    spans.append((m.start(), m.end(), *self.terms[key]))
        out = []
        for start, end, etype, concept in sorted(spans):
            sent_start = max(text.rfind(c, 0, start) for c in ".;!\n") + 1
            sent_end = min([i for i in (text.find(c, end) for c in ".;!\n") if i >= 0] or [len(text)])
            before = self._words(text[sent_start:start])[-self.WINDOW :]
            after = self._words(text[end:sent_end])[: self.WINDOW]
            mods = []
            if etype != "body_site":
                mods = [
                    m
                    for m in MODIFIERS
                    if self._has_trigger(before, self.PRE.get(m, [])) or self._has_trigger(after, self.POST.get(m, []))
                ]
            out.append({"start": start, "end": end, "type": etype, "concept": concept, "modifiers": mods})
        return out


def ours(text: str) -> list[Entity]:
    return [
        {
            "start": e.start,
            "end": e.end,
            "type": e.type.value,
            "concept": e.concept,
            "modifiers": [m.value for m in e.modifiers],
        }
        for e in extract_entities(text).entities
    ]


# ----------------------------------------------------------------------------------------------- scoring
def _match(gold: list[Entity], pred: list[Entity], *, strict: bool) -> list[tuple[int, int]]:
    """One-to-one pairs (gold index, pred index) of the same type: exact span (strict) or overlapping (lenient)."""
    pairs, used = [], set()
    for gi, g in enumerate(gold):
        for pi, p in enumerate(pred):
            if pi in used or p["type"] != g["type"]:
                continue
            same = (p["start"], p["end"]) == (g["start"], g["end"])
            overlap = p["start"] < g["end"] and g["start"] < p["end"]
            if same or (not strict and overlap):
                pairs.append((gi, pi))
                used.add(pi)
                break
    return pairs


def sentence_counts(gold: list[Entity], pred: list[Entity]) -> dict[str, np.ndarray]:
    """Per-key [tp, fp, fn] for one sentence; keys 'strict/<type>', 'lenient/<type>', 'modifier/<m>', 'concept'."""
    counts: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(3, dtype=int))
    for mode in ("strict", "lenient"):
        pairs = _match(gold, pred, strict=mode == "strict")
        matched_g = {g for g, _ in pairs}
        matched_p = {p for _, p in pairs}
        for gi, g in enumerate(gold):
            counts[f"{mode}/{g['type']}"][0 if gi in matched_g else 2] += 1
            counts[f"{mode}/all"][0 if gi in matched_g else 2] += 1
        for pi, p in enumerate(pred):
            if pi not in matched_p:
                counts[f"{mode}/{p['type']}"][1] += 1
                counts[f"{mode}/all"][1] += 1
        if mode == "lenient":
            for gi, pi in pairs:
                g, p = gold[gi], pred[pi]
                counts["concept"][0 if g["concept"] == p["concept"] else 1] += 1
                for m in MODIFIERS:
                    if g["type"] == "body_site":
                        continue
                    gm, pm = m in g["modifiers"], m in p["modifiers"]
                    if gm and pm:
                        counts[f"modifier/{m}"][0] += 1
                    elif pm:
                        counts[f"modifier/{m}"][1] += 1
                    elif gm:
                        counts[f"modifier/{m}"][2] += 1
                    key = "modifier/affirmed"
                    if m == MODIFIERS[-1]:
                        ga, pa = not g["modifiers"], not p["modifiers"]
                        counts[key][0 if ga and pa else 1 if pa else 2 if ga else 0] += int(ga or pa)
    return counts


def prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f = 2 * p * r / (p + r) if tp else (0.0 if tp + fp + fn else float("nan"))
    return p, r, f


def summarise(per_sentence: list[dict[str, np.ndarray]], *, n_boot: int, seed: int) -> dict[str, Any]:
    keys = sorted({k for c in per_sentence for k in c})
    mat = {k: np.stack([c.get(k, np.zeros(3, dtype=int)) for c in per_sentence]) for k in keys}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(per_sentence), size=(n_boot, len(per_sentence)))
    out: dict[str, Any] = {}
    for k, m in mat.items():
        tp, fp, fn = m.sum(axis=0)
        p, r, f = prf(tp, fp, fn)
        boot = m[idx].sum(axis=1)  # (n_boot, 3)
        fs = np.array([prf(*b)[2] for b in boot])
        fs = fs[~np.isnan(fs)]
        ci = [float(np.percentile(fs, 2.5)), float(np.percentile(fs, 97.5))] if len(fs) else [None, None]
        if k == "concept":
            out[k] = {"correct": int(tp), "wrong": int(fp), "accuracy": tp / (tp + fp) if tp + fp else None}
            continue
        out[k] = {
            "n_gold": int(tp + fn),
            "tp": int(tp),
            "fp": int(fp),
            "fn": int(fn),
            "precision": p,
            "recall": r,
            "f1": f,
            "f1_ci95": ci,
        }
    return out


def evaluate(
    system: Callable[[str], list[Entity]], rows: list[dict[str, Any]], *, n_boot: int, seed: int
) -> dict[str, Any]:
    t0 = time.perf_counter()
    counts = [sentence_counts(r["entities"], system(r["text"])) for r in rows]
    ms = (time.perf_counter() - t0) * 1000 / max(len(rows), 1)
    return {"ms_per_sentence": ms, **summarise(counts, n_boot=n_boot, seed=seed)}


# ----------------------------------------------------------------------------------------------- zero-shot
def label_names() -> dict[str, dict[str, str]]:
    out = {}
    for analyzer, folder in LABEL_SOURCES.items():
        card = json.loads((REPO / "models" / folder / "card.json").read_text())
        names = card.get("label_names") or {c: c for c in card["labels"]}
        out[analyzer] = {c: names.get(c, c) for c in card["labels"] if c not in NON_SPECIFIC}
    return out


def zero_shot_rows(rows: list[dict[str, Any]], names: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """One row per (sentence, label): best similarity, gold mention, and the lexicon link from extracted entities."""
    from vitalens.notes.embeddings import embed
    from vitalens.notes.zero_shot import note_segments, scores_from_vectors

    segments = [note_segments(r["text"]) for r in rows]
    vectors = embed([s for segs in segments for s in segs], batch_size=64)  # one batch: far faster than per note
    out, start = [], 0
    for r, segs in zip(rows, segments, strict=True):
        seg_vecs, start = vectors[start : start + len(segs)], start + len(segs)
        predicted_labels = {lbl for e in extract_entities(r["text"]).entities for lbl in e.labels}
        for analyzer, labels in names.items():
            scores = scores_from_vectors(seg_vecs, labels, analyzer=analyzer)
            for code, (sim, _) in scores.items():
                key = f"{analyzer}:{code}"
                out.append(
                    {
                        "split": r["split"],
                        "id": r["id"],
                        "label": key,
                        "similarity": sim,
                        "gold": int(key in r["labels"]),
                        "lexicon": int(key in predicted_labels),
                    }
                )
    return out


def ece(prob: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (prob >= lo) & (prob < hi if hi < 1 else prob <= hi)
        if sel.any():
            total += sel.mean() * abs(prob[sel].mean() - y[sel].mean())
    return float(total)


def zero_shot_report(zrows: list[dict[str, Any]], *, fit: bool, n_boot: int, seed: int) -> dict[str, Any]:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from vitalens.notes.zero_shot import Calibration, fit_calibration

    dev = [z for z in zrows if z["split"] == "dev"]
    test = [z for z in zrows if z["split"] == "test"]
    slope, intercept = fit_calibration([z["similarity"] for z in dev], [z["gold"] for z in dev])
    # Threshold: the probability that maximises F1 on dev (never chosen on test).
    cal = Calibration(slope=slope, intercept=intercept)
    dev_p = np.array([cal.probability(z["similarity"]) for z in dev])
    dev_y = np.array([z["gold"] for z in dev])
    grid = np.linspace(0.05, 0.95, 91)
    threshold = float(max(grid, key=lambda t: prf(*_cm(dev_p >= t, dev_y))[2] if (dev_p >= t).any() else -1))
    cal = Calibration(
        slope=slope,
        intercept=intercept,
        threshold=threshold,
        fitted_on=f"bench/data/notes_eval.jsonl dev split ({len(dev)} sentence-label pairs)",
        n=len(dev),
    )
    y = np.array([z["gold"] for z in test])
    p = np.array([cal.probability(z["similarity"]) for z in test])
    lex = np.array([z["lexicon"] for z in test])
    rng = np.random.default_rng(seed)
    ids = sorted({z["id"] for z in test})
    by_id = defaultdict(list)
    for i, z in enumerate(test):
        by_id[z["id"]].append(i)
    aucs = []
    for _ in range(n_boot):
        take = np.concatenate([by_id[ids[j]] for j in rng.integers(0, len(ids), len(ids))])
        if 0 < y[take].sum() < len(take):
            aucs.append(roc_auc_score(y[take], p[take]))
    zs = prf(*_cm(p >= threshold, y))
    lx = prf(*_cm(lex.astype(bool), y))
    both = prf(*_cm(lex.astype(bool) | (p >= threshold), y))
    report = {
        "calibration": {"slope": slope, "intercept": intercept, "threshold": threshold, "fitted_on": cal.fitted_on},
        "test": {
            "n_pairs": int(len(y)),
            "n_positive": int(y.sum()),
            "n_sentences": len(ids),
            "auroc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None,
            "auroc_ci95": [float(np.percentile(aucs, 2.5)), float(np.percentile(aucs, 97.5))] if aucs else None,
            "brier": float(brier_score_loss(y, p)),
            "ece": ece(p, y),
            "zero_shot": {"precision": zs[0], "recall": zs[1], "f1": zs[2]},
            "lexicon_links": {"precision": lx[0], "recall": lx[1], "f1": lx[2]},
            "combined": {"precision": both[0], "recall": both[1], "f1": both[2]},
        },
    }
    if fit:
        CALIBRATION.write_text(
            json.dumps(
                {
                    "slope": round(slope, 4),
                    "intercept": round(intercept, 4),
                    "threshold": round(threshold, 3),
                    "fitted_on": cal.fitted_on,
                    "n": len(dev),
                    "command": "bench/notes.py --fit-calibration",
                },
                indent=2,
            )
            + "\n"
        )
        logger.info("calibration written to %s", CALIBRATION)
    return report


def _cm(pred: np.ndarray, y: np.ndarray) -> tuple[int, int, int]:
    pred = np.asarray(pred, dtype=bool)
    y = np.asarray(y, dtype=bool)
    return int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())


# ----------------------------------------------------------------------------------------------- output
def _fmt(x: float | None) -> str:
    return "  -  " if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"


def print_table(title: str, res: dict[str, dict[str, Any]], keys: list[str]) -> None:
    print(f"\n{title}")
    print(
        f"{'':24} {'n':>4} | {'ours P':>7} {'R':>6} {'F1':>6} {'95% CI':>13} "
        f"| {'NegEx P':>7} {'R':>6} {'F1':>6} {'95% CI':>13}"
    )
    for k in keys:
        o, b = res["ours"].get(k), res["baseline"].get(k)
        if o is None:
            continue
        cells = []
        for m in (o, b):
            if m is None:
                cells.append(" " * 44)
                continue
            ci = m["f1_ci95"]
            ci_s = f"[{_fmt(ci[0])},{_fmt(ci[1])}]" if ci[0] is not None else "      -      "
            cells.append(f"{_fmt(m['precision']):>7} {_fmt(m['recall']):>6} {_fmt(m['f1']):>6} {ci_s:>13}")
        print(f"{k:24} {o['n_gold']:>4} | {cells[0]} | {cells[1]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "notes.json")
    parser.add_argument("--fit-calibration", action="store_true")
    parser.add_argument("--no-zero-shot", action="store_true", help="skip the MiniLM part (entities only)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    torch.set_num_threads(1)  # MiniLM on a shared 2-core machine: one thread is faster than two spinning

    rows = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    baseline = NegExBaseline()
    results: dict[str, Any] = {
        "bench": "notes",
        "data": str(args.data.relative_to(REPO)),
        "lexicon_version": load_lexicon().version,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "decision_support_notice": DECISION_SUPPORT_NOTICE,
        "splits": {},
    }
    type_keys = [f"{m}/{t}" for m in ("strict", "lenient") for t in [*TYPES, "all"]]
    mod_keys = [f"modifier/{m}" for m in [*MODIFIERS, "affirmed"]]
    for split in ("dev", "test"):
        part = [r for r in rows if r["split"] == split]
        res = {
            "n_sentences": len(part),
            "n_entities": sum(len(r["entities"]) for r in part),
            "ours": evaluate(ours, part, n_boot=args.bootstrap, seed=args.seed),
            "baseline": evaluate(baseline, part, n_boot=args.bootstrap, seed=args.seed),
        }
        results["splits"][split] = res
        label = "held out" if split == "test" else "rules written against it"
        print(f"\n=== {split} split ({label}): {res['n_sentences']} sentences, {res['n_entities']} gold entities ===")
        print_table("entities (strict: same characters and type; lenient: overlapping span)", res, type_keys)
        print_table("modifiers on lenient-matched entities", res, mod_keys)
        print(
            f"concept accuracy (matched): ours {_fmt(res['ours']['concept']['accuracy'])}, "
            f"baseline {_fmt(res['baseline']['concept']['accuracy'])}; "
            f"ms/sentence ours {res['ours']['ms_per_sentence']:.1f}, baseline {res['baseline']['ms_per_sentence']:.1f}"
        )
    if not args.no_zero_shot:
        zs = zero_shot_report(
            zero_shot_rows(rows, label_names()), fit=args.fit_calibration, n_boot=args.bootstrap, seed=args.seed
        )
        results["zero_shot"] = zs
        t = zs["test"]
        print(
            f"\nzero-shot note → label (test: {t['n_sentences']} sentences × labels = {t['n_pairs']} pairs, "
            f"{t['n_positive']} positive)"
        )
        ci = t["auroc_ci95"] or [None, None]
        print(
            f"  AUROC {_fmt(t['auroc'])} [{_fmt(ci[0])}, {_fmt(ci[1])}], Brier {_fmt(t['brier'])}, ECE {_fmt(t['ece'])}"
        )
        print(
            f"  at threshold {zs['calibration']['threshold']:.2f} (chosen on dev): zero-shot P/R/F1 "
            f"{_fmt(t['zero_shot']['precision'])}/{_fmt(t['zero_shot']['recall'])}/{_fmt(t['zero_shot']['f1'])}; "
            f"lexicon links {_fmt(t['lexicon_links']['precision'])}/{_fmt(t['lexicon_links']['recall'])}/"
            f"{_fmt(t['lexicon_links']['f1'])}; either (what the product reports) "
            f"{_fmt(t['combined']['precision'])}/{_fmt(t['combined']['recall'])}/{_fmt(t['combined']['f1'])}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"\nwrote {args.out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
