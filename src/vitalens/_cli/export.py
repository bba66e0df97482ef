"""``vitalens export ARTIFACT --onnx``: write a verified ``model.onnx`` into a model artifact.

Why a command: deployments without PyTorch (onnxruntime on an edge box) need the graph, and the card must list its
sha256 so the artifact verifies as a whole.
"""

from __future__ import annotations

from pathlib import Path

import typer

from vitalens._cli._common import user_errors

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("export")
    @user_errors
    def export_cmd(
        artifact: Path = typer.Argument(..., help="Model artifact folder (card.json + model.safetensors)."),
        onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Export ONNX (the only format for now)."),
        opset: int = typer.Option(17, "--opset", help="ONNX opset version."),
        atol: float = typer.Option(
            1e-4, "--atol", help="Largest accepted |PyTorch - onnxruntime| difference (relative beyond |logit| 1)."
        ),
    ) -> None:
        """Export ARTIFACT to ONNX, verified with onnxruntime, and record its sha256 in the card."""
        from vitalens.artifacts.onnx import export_onnx

        if not onnx:
            raise ValueError("nothing to export: pass --onnx")
        path = export_onnx(artifact, opset=opset, atol=atol)
        typer.echo(f"wrote {path} (verified against PyTorch within {atol:g}; sha256 recorded in the card)")
