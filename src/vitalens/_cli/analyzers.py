"""``vitalens analyzers``: list registered analyzers, their inputs and artifacts."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("analyzers")
    def analyzers_cmd(
        pattern: str = typer.Argument("*", help="Glob over analyzer names, e.g. 'fundus.*'."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """List every analyzer with the inputs it needs and its model artifact."""
        from vitalens.analyzers import get_spec, list_analyzers
        from vitalens.artifacts import ModelCard
        from vitalens.config import get_settings

        settings = get_settings()
        rows = []
        for name in list_analyzers(pattern):
            spec = get_spec(name)
            artifact = settings.models_dir / spec.default_artifact if spec.default_artifact else None
            status = "none needed"
            if artifact is not None:
                try:
                    card = ModelCard.read(artifact)
                    status = f"{artifact} ({'demonstration' if card.demonstration else 'validated'})"
                except Exception as exc:  # noqa: BLE001 - listing must not fail on one bad artifact
                    status = f"{artifact} (unavailable: {exc})"
            rows.append(
                {
                    "name": name,
                    "modality": str(spec.modality),
                    "inputs": [str(i) for i in spec.inputs],
                    "optional_inputs": [str(i) for i in spec.optional_inputs],
                    "artifact": status,
                    "description": spec.description,
                }
            )
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table(title="vitalens analyzers")
        for col in ("name", "inputs", "artifact", "description"):
            table.add_column(col)
        for r in rows:
            inputs = ", ".join(r["inputs"]) + (f" (+{', '.join(r['optional_inputs'])})" if r["optional_inputs"] else "")
            table.add_row(r["name"], inputs, r["artifact"], r["description"])
        Console().print(table)
