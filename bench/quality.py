"""Input quality / out-of-distribution gates: genuine real images passing, foreign real images refused.

Every image gate (fundus, OCT, chest X-ray) is scored on images it never saw while it was fitted or calibrated:

* genuine — the ``report`` quarter of each modality's patients (ODIR-5K, APTOS 2019, DRIVE; Kermany OCT2017;
  COVID-19 Radiography), split by a hash of the patient id (``vitalens.quality.calibrate.split_of``);
* foreign — scikit-image's sample photographs (its two retinal images excepted), pydicom's sample DICOM images,
  each modality's report images sent to the other modalities' gates, MedMNIST images of other modalities
  (28 px: refused as too small to grade — counted, and said), and blurred / dark / overexposed versions of the
  gate's own genuine report images (``vitalens.quality.calibrate.degrade``).

A genuine image "passes" when its verdict is pass (neither flagged nor refused); "not refused" counts the flagged
too. The genuine ODIR-5K report images of cataract eyes are also scored on their own (hazy photographs the
fundus analyzer must still see). A foreign image counts when it is refused. Rates with Wilson 95 % intervals and
n. The earlier fixed "overexposed" transform (× 2.2 + 70), which turns an underexposed photograph into a
well-exposed one, is still scored but not counted as foreign. The ECG gate is scored on real PTB-XL records and on
corrupted copies of them (flat line, disconnected leads, clipping, noise).

Run:
    .venv/bin/python bench/quality.py            # bundled gates in models/quality-*
    .venv/bin/python bench/quality.py --embedding-cache var/quality-embeddings.npz   # reruns skip the encoder
Prints a table and writes ``bench/results/quality.json``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens.quality.calibrate import DEGRADATIONS, MIN_SIDE_PX, degrade, genuine_images, split_of
from vitalens.quality.image_gate import load_image_gate

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared" / "data"
MODALITIES = ("fundus", "oct", "cxr")
#: scikit-image samples that *are* retinal photographs: not foreign to a fundus gate.
SKIMAGE_RETINAL = {"retina", "microaneurysms"}

logger = logging.getLogger("bench.quality")


#: Gates whose slot decodes uploads to greyscale (``ImageLimits(colour="gray")``): they see what the slot delivers.
GREY_SLOTS = ("oct", "cxr")


def as_grey(image: np.ndarray) -> np.ndarray:
    """The image as a greyscale slot delivers it (ITU-R 601 luma), repeated to three channels."""
    luma = np.asarray(image, dtype=np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.repeat(np.clip(luma + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(k: int, n: int) -> dict[str, float]:
    lo, hi = wilson(k, n)
    return {"k": k, "n": n, "rate": k / n if n else float("nan"), "low": lo, "high": hi}


def _rgb(array: np.ndarray) -> np.ndarray | None:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        return None
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        lo, hi = np.percentile(a, (0.5, 99.5))
        a = np.clip((a - lo) / ((hi - lo) or 1.0) * 255, 0, 255).astype(np.uint8)
    return a


def skimage_samples() -> list[tuple[str, np.ndarray]]:
    """scikit-image's bundled sample images (no download), minus its two retinal photographs."""
    from skimage import data

    out = []
    for name in sorted(data.__all__):
        if (
            name in SKIMAGE_RETINAL
            or name.startswith("_")
            or name in ("download_all", "lbp_frontal_face_cascade_filename")
        ):
            continue
        fn = getattr(data, name)
        try:
            img = fn()
        except Exception:  # noqa: BLE001 — pooch downloads fail offline; skip those samples
            continue
        if isinstance(img, tuple):
            img = img[0]
        arr = np.asarray(img)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        if arr.ndim == 3 and arr.shape[2] not in (3, 4):  # volumes, stacks
            arr = arr[arr.shape[0] // 2]
        rgb = _rgb(arr)
        if rgb is not None and min(rgb.shape[:2]) >= 16:
            out.append((f"skimage:{name}", rgb))
    return out


def pydicom_samples() -> list[tuple[str, np.ndarray]]:
    """pydicom's bundled test images that decode offline with the installed handlers (one frame each)."""
    import warnings

    import pydicom
    from pydicom.data import get_testdata_files

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = get_testdata_files("*.dcm")
    seen = set()
    for path in sorted(files):
        try:
            ds = pydicom.dcmread(path)
            arr = ds.pixel_array
        except Exception:  # noqa: BLE001 — compressed syntaxes without a handler, no pixel data
            continue
        if arr.ndim == 4 or (arr.ndim == 3 and getattr(ds, "NumberOfFrames", 1) not in (None, 1, "1")):
            arr = arr[len(arr) // 2]
        rgb = _rgb(arr)
        if rgb is None or min(rgb.shape[:2]) < 16:
            continue
        key = (rgb.shape, int(rgb.sum()) % 100003)
        if key in seen:  # the same image in several transfer syntaxes
            continue
        seen.add(key)
        out.append((f"pydicom:{Path(path).name}", rgb))
    return out


def cataract_ids(shared: Path) -> set[str]:
    """ODIR-5K image ids (``<patient>_<eye>``) of eyes whose diagnostic keywords or folder say cataract."""
    root = shared / "fundus" / "odir"
    out: set[str] = set()
    labels = root / "labels.csv"
    if labels.is_file():
        with open(labels, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                for eye in ("Left", "Right"):
                    if "cataract" in row.get(f"{eye}-Diagnostic Keywords", "").lower():
                        out.add(f"{row['ID']}_{eye.lower()}")
    out.update(p.stem for p in (root / "fullres" / "cataract").glob("*.jpg"))
    return out


def brightened_fixed(image: np.ndarray) -> np.ndarray:
    """The earlier fixed "overexposed" transform, × 2.2 + 70 (well exposed when the original was dark)."""
    return np.clip(np.asarray(image, dtype=np.float32) * 2.2 + 70.0, 0, 255).astype(np.uint8)


def _image_key(image: np.ndarray) -> str:
    a = np.ascontiguousarray(image)
    return hashlib.sha1(a.tobytes() + str(a.shape).encode()).hexdigest()


def medmnist_samples(shared: Path, flag: str, n: int) -> list[tuple[str, np.ndarray]]:
    path = shared / "medmnist" / f"{flag}.npz"
    if not path.is_file():
        return []
    with np.load(path) as data:
        images = data["test_images"][:n]
    return [(f"medmnist:{flag}:{i}", _rgb(im)) for i, im in enumerate(images)]  # type: ignore[misc]


#: Corruptions of a real record that the ECG gate must refuse.
ECG_CORRUPTIONS = {
    "all leads flat (recorder disconnected)": lambda x, fs: np.zeros_like(x),
    "8 of 12 leads disconnected": lambda x, fs: np.concatenate([x[:4], np.zeros_like(x[4:])]),
    "clipped at ±0.2 mV (saturated amplifier)": lambda x, fs: np.clip(x, -0.2, 0.2),
    "2 s excerpt": lambda x, fs: x[:, : int(2 * fs)],
    "white noise σ 1 mV on every lead": lambda x, fs: x + np.random.default_rng(0).normal(0, 1.0, x.shape),
}


def bench_ecg_gate(shared: Path, n: int) -> dict[str, Any] | None:
    """The ECG gate on ``n`` real PTB-XL fold-10 records and on corrupted copies of them."""
    from vitalens.quality.ecg import assess_ecg

    root = shared / "ecg" / "ptb-xl"
    if not (root / "ptbxl_database.csv").is_file():
        return None
    from vitalens.data.ptbxl import PTBXLDataset

    ds = PTBXLDataset(root, folds=[10], drop_unlabelled=False)
    idx = np.random.default_rng(0).choice(len(ds), size=min(n, len(ds)), replace=False)
    records = [ds.read_record(int(i)) for i in idx]
    fs = float(ds.sampling_rate)
    verdicts = Counter(assess_ecg(x, fs).verdict for x in records)
    out: dict[str, Any] = {
        "genuine": {
            "n": len(records),
            "not_refused": rate(len(records) - verdicts["refuse"], len(records)),
            "flagged": rate(verdicts["flag"], len(records)),
        },
        "corrupted": {},
    }
    for name, fn in ECG_CORRUPTIONS.items():
        v = Counter(assess_ecg(fn(x, fs), fs).verdict for x in records)
        out["corrupted"][name] = {"n": len(records), "refused": rate(v["refuse"], len(records))}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--medmnist-n", type=int, default=100)
    parser.add_argument("--ecg-n", type=int, default=200)
    parser.add_argument("--degraded-n", type=int, default=60, help="report images degraded per kind and modality")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "quality.json")
    parser.add_argument(
        "--embedding-cache", type=Path, default=None, help="npz of encoder embeddings by image hash, read and updated"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from vitalens.quality.embedding import embed_images

    start = time.time()
    gates = {m: load_image_gate(m, args.models) for m in MODALITIES}
    report = {
        m: [
            (f"{im.dataset}:{im.image_id}", im.load())
            for im in genuine_images(args.shared, m)
            if split_of(m, im.group) == "report"
        ]
        for m in MODALITIES
    }
    foreign_common = skimage_samples() + pydicom_samples()
    medmnist = {
        "retinamnist": medmnist_samples(args.shared, "retinamnist", args.medmnist_n),
        "pneumoniamnist": medmnist_samples(args.shared, "pneumoniamnist", args.medmnist_n),
    }
    pick = np.random.default_rng(0)
    picks = {  # the same draws, in the same order, as before: each kind its own sample of report images
        m: {
            k: sorted(pick.choice(len(report[m]), size=min(args.degraded_n, len(report[m])), replace=False))
            for k in DEGRADATIONS
        }
        for m in MODALITIES
    }
    degraded = {
        m: {k: [(f"{report[m][i][0]}:{k}", degrade(report[m][i][1], k)) for i in idx] for k, idx in kinds.items()}
        for m, kinds in picks.items()
    }
    brightened = {  # the overexposed set's images under the earlier fixed transform (reported, not counted)
        m: [(f"{report[m][i][0]}:brightened", brightened_fixed(report[m][i][1])) for i in picks[m]["overexposed"]]
        for m in MODALITIES
    }
    cataract = cataract_ids(args.shared)

    disk: dict[str, np.ndarray] = {}
    if args.embedding_cache is not None and args.embedding_cache.is_file():
        with np.load(args.embedding_cache) as data:
            disk = {k: data[k] for k in data.files}
        logger.info("%d cached embeddings from %s", len(disk), args.embedding_cache)
    cache: dict[str, np.ndarray] = {}

    def embeddings(items: list[tuple[str, np.ndarray]]) -> list[np.ndarray | None]:
        """Embeddings, computed once per image; none for thumbnails, which the size check refuses first."""
        for n, im in items:
            if n not in cache and min(im.shape[:2]) >= MIN_SIDE_PX and _image_key(im) in disk:
                cache[n] = disk[_image_key(im)]
        todo = [(n, im) for n, im in items if n not in cache and min(im.shape[:2]) >= MIN_SIDE_PX]
        if todo:
            for (n, im), e in zip(todo, embed_images([im for _, im in todo]), strict=True):
                cache[n] = e
                disk[_image_key(im)] = e
        return [cache.get(n) for n, _ in items]

    def score(gate_modality: str, items: list[tuple[str, np.ndarray]]) -> dict[str, Any]:
        gate = gates[gate_modality]
        if gate_modality in GREY_SLOTS:  # the OCT and X-ray slots decode every upload to one grey channel
            items = [(f"{n}:grey", as_grey(im)) for n, im in items]
        verdicts, reasons = Counter(), Counter()
        examples = []
        sub: dict[str, Counter[str]] = {"cataract": Counter()}
        for (name, img), emb in zip(items, embeddings(items), strict=True):
            a = gate.assess(img, embedding=emb)
            verdicts[a.verdict] += 1
            if name.startswith("ODIR-5K:") and name.split(":")[1] in cataract:
                sub["cataract"][a.verdict] += 1
            for r in a.reasons:
                reasons[r.split(" (")[0]] += 1
            if a.verdict != "refuse" and len(examples) < 5:
                examples.append(name)
        n = len(items)
        return {
            "n": n,
            "refused": rate(verdicts["refuse"], n),
            "flagged": rate(verdicts["flag"], n),
            "passed": rate(verdicts["pass"], n),
            "not_refused": rate(n - verdicts["refuse"], n),
            "reasons": dict(reasons.most_common()),
            "not_refused_examples": examples,
            **{
                f"{k} (ODIR-5K keyword)": {
                    "n": sum(c.values()),
                    "passed": rate(c["pass"], sum(c.values())),
                    "flagged": rate(c["flag"], sum(c.values())),
                    "refused": rate(c["refuse"], sum(c.values())),
                }
                for k, c in sub.items()
                if sum(c.values())
            },
        }

    results: dict[str, Any] = {"genuine": {}, "foreign": {}, "not_counted": {}}
    for m in MODALITIES:
        logger.info("gate %s: genuine report images", m)
        results["genuine"][m] = score(m, report[m])
        f: dict[str, Any] = {}
        f["natural photographs and documents (scikit-image)"] = score(
            m, [x for x in foreign_common if x[0].startswith("skimage")]
        )
        f["DICOM sample images (pydicom)"] = score(m, [x for x in foreign_common if x[0].startswith("pydicom")])
        for other in MODALITIES:
            if other != m:
                f[f"{other} images (report split)"] = score(m, report[other])
        for flag, items in medmnist.items():
            own = (flag == "retinamnist" and m == "fundus") or (flag == "pneumoniamnist" and m == "cxr")
            if items and not own:
                f[f"MedMNIST {flag} (28 px)"] = score(m, items)
        for k, items in degraded[m].items():
            f[f"own report images, {k}"] = score(m, items)
        results["foreign"][m] = f
        tot = sum(v["refused"]["k"] for v in f.values())
        n = sum(v["n"] for v in f.values())
        results["foreign"][m]["_all"] = {"n": n, "refused": rate(tot, n)}
        results["not_counted"][m] = {
            "own report images, brightened × 2.2 + 70 (the earlier 'overexposed')": score(m, brightened[m])
        }
    if args.embedding_cache is not None:
        args.embedding_cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.embedding_cache, **disk)

    ecg = bench_ecg_gate(args.shared, n=args.ecg_n)
    results["ecg"] = ecg
    out = {
        "bench": "quality",
        "notice": DECISION_SUPPORT_NOTICE,
        "protocol": __doc__.split("\nRun:")[0].split("\n\n", 1)[1].strip(),
        "gates": {m: {"card": gates[m].card.name, "calibration": gates[m].card.calibration} for m in MODALITIES},
        "results": results,
        "wall_s": time.time() - start,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=float) + "\n", encoding="utf-8")

    def pct(r: dict[str, float]) -> str:
        return f"{100 * r['rate']:5.1f} % [{100 * r['low']:5.1f}, {100 * r['high']:5.1f}] (n={r['n']})"

    print("Image gates — genuine images passed (neither flagged nor refused), foreign images refused; Wilson 95 % CI")
    for m in MODALITIES:
        g = results["genuine"][m]
        print(f"\n[{m}] genuine passed {pct(g['passed'])}; not refused {pct(g['not_refused'])}")
        for key, v in g.items():
            if key.endswith("(ODIR-5K keyword)"):
                print(f"  {key}: passed {pct(v['passed'])}, flagged {pct(v['flagged'])}, refused {pct(v['refused'])}")
        for name, v in results["foreign"][m].items():
            if name != "_all":
                print(f"  refused  {pct(v['refused'])}  {name}")
        print(f"  refused  {pct(results['foreign'][m]['_all']['refused'])}  ALL FOREIGN")
        for name, v in results["not_counted"][m].items():
            print(f"  (not counted) refused {pct(v['refused'])}, flagged {pct(v['flagged'])}  {name}")
    if ecg:
        print(f"\n[ecg] genuine passed {pct(ecg['genuine']['not_refused'])}")
        for name, v in ecg["corrupted"].items():
            print(f"  refused  {pct(v['refused'])}  {name}")
    print(f"\nwrote {args.out}\n{DECISION_SUPPORT_NOTICE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
