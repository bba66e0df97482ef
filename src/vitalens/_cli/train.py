"""``vitalens train``, ``vitalens evaluate`` and ``vitalens calibrate``: thin over :mod:`vitalens.training`.

Why thin: a training run from the CLI and one from a notebook or a bench call the same ``train()``/``evaluate()``
and write the same artifact and report; the CLI only parses options and prints a summary table.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from vitalens import DECISION_SUPPORT_NOTICE
from vitalens._cli._common import user_errors

__all__ = ["register", "print_summary", "find_recipe"]

logger = logging.getLogger(__name__)


def find_recipe(analyzer: str, recipe: Path | None) -> Path:
    """The recipe file: ``recipe`` as given (or relative to the repository), else ``recipes/<analyzer>.yaml``."""
    from vitalens.training.recipe import RECIPES_DIR, default_recipe_path

    if recipe is None:
        path = default_recipe_path(analyzer)
        if not path.is_file():
            raise FileNotFoundError(f"no default recipe {path} for analyzer '{analyzer}'; pass --recipe FILE")
        return path
    if recipe.is_file():
        return recipe
    for candidate in (RECIPES_DIR.parent / recipe, RECIPES_DIR / recipe.name):
        if not recipe.is_absolute() and candidate.is_file():
            return candidate
    raise FileNotFoundError(f"recipe file {recipe} does not exist")


def _fmt(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and v != v) else (f"{v:.3f}" if isinstance(v, float) else str(v))


def _p_text(p: float) -> str:
    """A p-value as the summaries print it: ``< 0.001`` below the resampling's resolution, else ``= 0.006``."""
    return "< 0.001" if p < 0.001 else f"= {_fmt(p)}"


def print_summary(report: dict[str, Any], split: str, console: Console | None = None) -> None:
    """A rich table of one split's per-label metrics, the averages and the notice."""
    console = console or Console()
    m = report["splits"][split]
    if report.get("demonstration"):
        console.print("[bold yellow]DEMONSTRATION MODEL[/] — synthetic or few training data; not for clinical use.")
    table = Table(title=f"{report['analyzer']} · {split} split (n = {m['n']})")
    for col in ("label", "name", "n+", "AUROC", "AP", "threshold", "sens", "spec", "F1"):
        table.add_column(col, justify="left" if col in ("label", "name") else "right")
    names = report.get("label_names", {})
    for lab, pl in m["per_label"].items():
        table.add_row(
            lab,
            names.get(lab, lab),
            str(pl["n_positive"]),
            _fmt(pl["auroc"]),
            _fmt(pl["ap"]),
            _fmt(pl["threshold"]),
            _fmt(pl["sensitivity"]),
            _fmt(pl["specificity"]),
            _fmt(pl["f1"]),
        )
    console.print(table)
    line = (
        f"macro AUROC {_fmt(m['macro_auroc'])} · micro AUROC {_fmt(m['micro_auroc'])} · "
        f"macro F1 {_fmt(m['macro_f1'])} · ECE {_fmt(m.get('ece'))}"
    )
    if "odir_score" in m:
        line += f" · ODIR score {_fmt(m['odir_score']['final'])}"
    console.print(line)
    c = m.get("ece_if_calibrated")
    if c:
        console.print(
            f"ECE if perfectly calibrated (n = {m.get('n')} × {len(m.get('per_label') or {})} labels): "
            f"{_fmt(c['mean'])} [{_fmt(c['low'])}, "
            f"{_fmt(c['high'])}] · p {_p_text(c['p_value'])} "
            "for the observed ECE"
        )
    mc = m.get("multiclass")
    if mc:
        extra = f"accuracy {_fmt(mc.get('accuracy'))} · balanced accuracy {_fmt(mc.get('balanced_accuracy'))}"
        if "quadratic_kappa" in mc:
            extra += f" · quadratic kappa {_fmt(mc['quadratic_kappa'])}"
        console.print(extra)
    for code, d in (m.get("derived") or {}).items():
        console.print(
            f"{d.get('name', code)}: AUROC {_fmt(d.get('auroc'))}, sensitivity {_fmt(d.get('sensitivity'))}, "
            f"specificity {_fmt(d.get('specificity'))} at threshold {_fmt(d.get('threshold'))}"
        )
    console.print(f"Thresholds: {report.get('threshold_method')}; calibration: {report['calibration']['method']}")
    console.print(f"[dim]{DECISION_SUPPORT_NOTICE}[/]")


def register(app: typer.Typer) -> None:
    @app.command("train")
    @user_errors
    def train_cmd(
        analyzer: str = typer.Argument(..., help="Analyzer to train, e.g. fundus.odir."),
        data: Path = typer.Option(..., "--data", help="Dataset root in its published layout (or a synthetic twin)."),
        out: Path = typer.Option(..., "--out", help="Output folder: checkpoints, artifact/, report, plots."),
        recipe: Path | None = typer.Option(None, "--recipe", help="Recipe YAML (default recipes/ANALYZER.yaml)."),
        overrides: list[str] = typer.Option([], "--set", help="Recipe override key.sub=value (repeatable)."),
        resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoints/last.ckpt."),
    ) -> None:
        """Train ANALYZER's model; thresholds and calibration on validation, metrics on the held-out test split."""
        import json

        from vitalens.training.recipe import parse_overrides
        from vitalens.training.tasks import get_task_class

        get_task_class(analyzer)
        if not data.exists():
            raise FileNotFoundError(f"data root {data} does not exist")
        recipe_path = find_recipe(analyzer, recipe)
        from vitalens.training.engine import train

        artifact = train(
            analyzer, data=data, out=out, recipe=recipe_path, overrides=parse_overrides(overrides), resume=resume
        )
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        # a frozen-trunk run scores every patient out of fold and has no test split
        splits = report.get("splits") or {}
        print_summary(report, "test" if "test" in splits else next(iter(splits), "test"))
        Console().print(f"Artifact: {artifact}\nReport: {out / 'report.md'}")

    @app.command("evaluate")
    @user_errors
    def evaluate_cmd(
        artifact: Path = typer.Argument(..., help="Model artifact folder (card.json + weights)."),
        data: Path = typer.Option(..., "--data", help="Dataset root in the layout of the artifact's task."),
        out: Path | None = typer.Option(None, "--out", help="Report folder (report.json/.md, plots); default: none."),
        split: str = typer.Option("test", "--split", help="train, val, test (the card's split) or all."),
        folds: str | None = typer.Option(
            None, "--folds", help="Test folds for fold-based datasets (PTB-XL), e.g. '10' or '9,10'."
        ),
        overrides: list[str] = typer.Option([], "--set", help="Recipe override key.sub=value (repeatable)."),
    ) -> None:
        """Score a model artifact on one split of a dataset folder with the card's own preprocessing, calibration
        and thresholds (only that split is read: a folder of test records alone is external validation)."""
        from vitalens.training.evaluate import SPLITS

        if split not in SPLITS:
            from vitalens._naming import unknown_name_error

            raise unknown_name_error("split", split, SPLITS)
        if not artifact.is_dir():
            raise FileNotFoundError(f"model artifact folder {artifact} does not exist")
        if not data.exists():
            raise FileNotFoundError(f"data root {data} does not exist")
        from vitalens.training.evaluate import evaluate
        from vitalens.training.recipe import parse_overrides

        extra = parse_overrides(overrides)
        if folds is not None:
            try:
                extra["task.test_folds"] = [int(f) for f in folds.split(",") if f.strip()]
            except ValueError:
                raise ValueError(f"--folds must be comma-separated fold numbers, got '{folds}'") from None
        report = evaluate(artifact, data=data, out=out, split=split, overrides=extra)
        print_summary(report, split)
        console = Console()
        ev = report["evaluated_on"]
        console.print(f"Scored {ev['n_records']} records: {ev['selection']} ({ev['n_excluded']} left out).")
        if report.get("warning"):
            console.print(f"[bold yellow]Warning[/]: {report['warning']}")
        if out is not None:
            console.print(f"Report: {out / 'report.md'}")

    @app.command("calibrate")
    @user_errors
    def calibrate_cmd(
        artifact: Path = typer.Argument(..., help="Multi-label model artifact folder (card.json + weights)."),
        data: Path = typer.Option(..., "--data", help="The dataset root the artifact was trained on."),
        method: str = typer.Option(
            "auto",
            "--method",
            help=(
                "auto (per-label, shared-slope or shrunk Platt, or isotonic, chosen on validation), platt, "
                "platt-shared-slope, platt-shrunk, isotonic, temperature."
            ),
        ),
        json_out: Path | None = typer.Option(None, "--json", help="Also write the result JSON here."),
        plot_out: Path | None = typer.Option(None, "--plot", help="Also write the reliability plot here."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Measure only; leave the artifact as it is."),
    ) -> None:
        """Refit ARTIFACT's per-label calibration on its own validation split (weights untouched), re-derive its
        thresholds there, and rescore the test split; the card, report and plots are rewritten."""
        import shlex
        import sys

        if not artifact.is_dir():
            raise FileNotFoundError(f"model artifact folder {artifact} does not exist")
        if not data.exists():
            raise FileNotFoundError(f"data root {data} does not exist")
        from vitalens.training.recalibrate import recalibrate_artifact

        command = "vitalens " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        res = recalibrate_artifact(
            artifact,
            data=data,
            method=method,
            command=command,
            write=not dry_run,
            json_out=json_out,
            plot_out=plot_out,
        )
        t = res["test"]
        console = Console()
        console.print(
            f"{res['method']} fitted on {res['fitted_on']['n_patients']} validation patients; "
            f"test (n = {t['n_patients']}): ECE {_fmt(t['ece_before']['value'])} → {_fmt(t['ece_after']['value'])} "
            f"[{_fmt(t['ece_after']['low'])}, {_fmt(t['ece_after']['high'])}], macro AUROC "
            f"{_fmt(t['macro_auroc_before'])} → {_fmt(t['macro_auroc_after'])}"
        )
        c = t.get("ece_if_calibrated")
        if c:
            console.print(
                f"A perfectly calibrated model would show ECE {_fmt(c['mean'])} [{_fmt(c['low'])}, "
                f"{_fmt(c['high'])}] at this n; p {_p_text(c['p_value'])} "
                "for the test ECE."
            )
        if not t["reproduces_card_test_auroc"]:
            console.print("[bold yellow]Warning[/]: the test split read here does not reproduce the card's AUROC.")
        console.print(
            "Artifact left unchanged (--dry-run)." if dry_run else f"Card and report rewritten in {artifact}."
        )
        console.print(f"[dim]{DECISION_SUPPORT_NOTICE}[/]")
