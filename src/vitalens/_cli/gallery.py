"""``vitalens gallery ARTIFACT --data PATH --out DIR``: correct vs misclassified examples with their overlays.

Thin over :func:`vitalens.explain.gallery.build_gallery`; works for every single-image artifact (DR, OCT, ...).
"""

from __future__ import annotations

from pathlib import Path

import typer

from vitalens._cli._common import user_errors

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("gallery")
    @user_errors
    def gallery_cmd(
        artifact: Path = typer.Argument(..., help="Model artifact folder of a single-image analyzer."),
        data: Path = typer.Option(..., "--data", help="Dataset root in the layout of the artifact's task."),
        out: Path = typer.Option(..., "--out", help="Folder for index.html, gallery.json and the PNGs."),
        split: str = typer.Option("test", "--split", help="train, val, test (the card's split) or all."),
        per_class: int = typer.Option(3, "--per-class", min=1, max=50, help="Correct and wrong examples per class."),
    ) -> None:
        """Write an HTML gallery of correct and misclassified examples with Grad-CAM overlays."""
        from vitalens.explain.gallery import build_gallery
        from vitalens.training.evaluate import SPLITS

        if split not in SPLITS:
            from vitalens._naming import unknown_name_error

            raise unknown_name_error("split", split, SPLITS)
        if not artifact.is_dir():
            raise FileNotFoundError(f"model artifact folder {artifact} does not exist")
        if not data.exists():
            raise FileNotFoundError(f"data root {data} does not exist")
        page = build_gallery(artifact, data=data, out=out, split=split, per_class=per_class)
        typer.echo(f"wrote {page}")
