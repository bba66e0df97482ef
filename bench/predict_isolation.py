"""Does stateless predict traffic delay the clinical jobs that share a model? The predict gate vs no gate.

Why: a prediction and a job call the same analyzer instance, and an analyzer runs one call at a time per model (its
call lock: explainers hook the net). Without a bound, a flood of predictions queues on that lock in front of the
job. The gate (``VITALENS_PREDICT_CONCURRENCY``) admits that many predictions at once and answers the rest 503 at
once. Measured in one run, same process, same stand-in model:

* a stand-in analyzer whose "model" holds the call lock for ``--model-ms`` (a fixed sleep, so the figure is about
  queueing, not about this CPU's speed);
* ``--clients`` threads post predictions to ``POST /api/v1/predict/bench.sleep`` in a loop (the flood);
* meanwhile ``--jobs`` job-path calls (``app.state.registry.get(name)(inputs)``, what a job worker does) are timed;
* the baseline is the same flood with the gate effectively off (concurrency 64), then the gate at 2 and at 1, and a
  run with no flood at all (the floor: the model time alone).

Run (from the repository root):
    .venv/bin/python bench/predict_isolation.py [--clients 8] [--jobs 40] [--model-ms 40]

Prints a table and writes ``bench/results/predict_isolation.json`` (median and p95 job latency with bootstrap 95 %
CIs, predictions answered and refused).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
NAME = "bench.sleep"

logger = logging.getLogger("bench.predict_isolation")


def _register(model_s: float) -> None:
    from vitalens.analyzers import Analyzer, Findings, register_analyzer
    from vitalens.domain import AnalysisResult, Finding, ModelInfo, StudyInputs

    class SleepAnalyzer(Analyzer):
        """Holds the model (the call lock) for a fixed time, then answers a computed number (age / 120)."""

        def model_info(self) -> ModelInfo:
            return ModelInfo(name="sleep", analyzer=NAME, version="0", demonstration=True, trained_on="nothing")

        def analyze(self, inputs: StudyInputs, *, explain: bool = True) -> AnalysisResult:
            time.sleep(model_s)
            p = float(inputs.get("age")) / 120.0
            return AnalysisResult(
                analyzer=NAME,
                model=self.model_info(),
                trained_on="nothing",
                demonstration=True,
                findings=[Finding(code="X", name="x", probability=p, threshold=0.5, positive=p >= 0.5)],
            )

    register_analyzer(NAME, modality="bench", inputs=("age",), render=(Findings(),))(SleepAnalyzer)


def _ci(values: list[float], stat: Any, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    import numpy as np

    x = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    boots = [float(stat(rng.choice(x, size=len(x), replace=True))) for _ in range(n_boot)]
    return float(stat(x)), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def _run(label: str, concurrency: int, clients: int, jobs: int, tmp: Path) -> dict[str, Any]:
    import numpy as np
    from fastapi.testclient import TestClient

    from vitalens.config import Settings
    from vitalens.domain import StudyInputs
    from vitalens.service.app import create_app

    settings = Settings(
        environment="test",
        secret_key="b" * 40,
        data_dir=tmp / label,
        public_predict=True,
        predict_rate_limit="1000000/minute",
        predict_concurrency=concurrency,
    )
    app = create_app(settings)
    stop = threading.Event()
    answers: dict[int, int] = {}
    lock = threading.Lock()
    latencies: list[float] = []
    with TestClient(app) as client:

        def flood() -> None:
            while not stop.is_set():
                r = client.post(f"/api/v1/predict/{NAME}", data={"age": "60"})
                with lock:
                    answers[r.status_code] = answers.get(r.status_code, 0) + 1
                if r.status_code == 503:
                    time.sleep(0.005)  # a client that honours "busy" a little (it is told Retry-After)

        threads = [threading.Thread(target=flood, daemon=True) for _ in range(clients)]
        for t in threads:
            t.start()
        time.sleep(0.3 if clients else 0.0)  # let the flood build up
        analyzer = app.state.registry.get(NAME)
        started = time.perf_counter()
        for _ in range(jobs):
            t0 = time.perf_counter()
            analyzer(StudyInputs(age_years=50))  # the job path: same instance, same call lock
            latencies.append((time.perf_counter() - t0) * 1000.0)
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        stop.set()
        for t in threads:
            t.join(30)
    median = _ci(latencies, np.median)
    p95 = _ci(latencies, lambda a: np.percentile(a, 95))
    return {
        "label": label,
        "concurrency": concurrency,
        "clients": clients,
        "n_jobs": len(latencies),
        "job_ms_median": median,
        "job_ms_p95": p95,
        "predictions_answered_per_s": answers.get(200, 0) / elapsed,
        "predictions_refused_503": answers.get(503, 0),
        "other_answers": {str(k): v for k, v in answers.items() if k not in (200, 503)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--model-ms", type=float, default=40.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "predict_isolation.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    _register(args.model_ms / 1000.0)
    tmp = Path(tempfile.mkdtemp(prefix="vitalens-predict-iso-"))
    runs = [
        _run("no flood", 1, 0, args.jobs, tmp),
        _run("flood, no gate (64)", 64, args.clients, args.jobs, tmp),
        _run("flood, gate 2", 2, args.clients, args.jobs, tmp),
        _run("flood, gate 1", 1, args.clients, args.jobs, tmp),
    ]
    print(
        f"job latency on a model shared with {args.clients} predict clients (model holds the lock {args.model_ms:g} ms)"
    )
    print(f"{'run':22s} {'n':>3s} {'median ms [95% CI]':>26s} {'p95 ms [95% CI]':>26s} {'pred/s':>7s} {'503s':>6s}")
    for r in runs:
        m, p = r["job_ms_median"], r["job_ms_p95"]
        print(
            f"{r['label']:22s} {r['n_jobs']:3d} {m[0]:8.1f} [{m[1]:6.1f}, {m[2]:6.1f}] "
            f"{p[0]:8.1f} [{p[1]:6.1f}, {p[2]:6.1f}] "
            f"{r['predictions_answered_per_s']:7.1f} {r['predictions_refused_503']:6d}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "bench": "predict_isolation",
                "question": "job latency on a model shared with a predict flood, with and without the predict gate",
                "model_ms": args.model_ms,
                "clients": args.clients,
                "machine": {"python": platform.python_version(), "platform": platform.platform()},
                "ci": "bootstrap 95 % (2000 resamples) over the job calls of each run",
                "runs": runs,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
