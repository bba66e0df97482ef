"""``vitalens analyzers``: every registered analyzer (plug-ins too) with its title, its slots and its model.

Why the slots: they are what ``vitalens analyze NAME --input SLOT=PATH`` and ``POST /api/v1/predict/NAME`` take,
with the file types and limits each accepts, read from the contract like every other surface.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from vitalens._cli._common import user_errors

__all__ = ["register", "analyzer_rows", "slot_line"]


def slot_line(slot: dict[str, Any]) -> str:
    """``fundus_left (image, required; .jpg .png …; min_side 64)`` from a contract's public slot entry."""
    need = "required" if slot["required"] else (f"one of {slot['any_of']}" if slot["any_of"] else "optional")
    parts = [f"{slot['kind']}, {need}"]
    if slot["accept"]:
        parts.append(" ".join(s for s in slot["accept"] if s))
    limits = ", ".join(
        f"{k} {'/'.join(map(str, v)) if isinstance(v, list | tuple) else v}"
        for k, v in slot["limits"].items()
        if v is not False and (not isinstance(v, list | tuple) or len(v) < 6)
    )
    if limits:
        parts.append(limits)
    hints = " ".join(f"--hint {slot['name']}.{h['name']}=…" for h in slot.get("hints", []))
    if hints:
        parts.append(hints)
    return f"{slot['name']} ({'; '.join(parts)})"


def analyzer_rows(pattern: str = "*") -> list[dict[str, Any]]:
    """The contract's public description of each analyzer matching ``pattern``, with its model's state."""
    from vitalens.analyzers import create_analyzer, get_contract, list_analyzers
    from vitalens.artifacts import ModelCard

    rows = []
    for name in list_analyzers(pattern):
        contract = get_contract(name)
        row = contract.public()
        try:
            availability = create_analyzer(name).availability()
            row["ready"], row["unavailable_reason"] = availability.ready, availability.reason or None
        except Exception as exc:  # noqa: BLE001 - listing must not fail on one analyzer
            row["ready"], row["unavailable_reason"] = False, f"{type(exc).__name__}: {exc}"
        status = "none needed"
        if contract.default_artifact:
            from vitalens.config import get_settings

            artifact = get_settings().models_dir / contract.default_artifact
            try:
                card = ModelCard.read(artifact)
                status = f"{artifact} ({'demonstration' if card.demonstration else 'validated'})"
            except Exception:  # noqa: BLE001 - the reason is in unavailable_reason
                status = f"no bundled model ({artifact})"
        row["artifact"] = status
        rows.append(row)
    return rows


def register(app: typer.Typer) -> None:
    @app.command("analyzers")
    @user_errors
    def analyzers_cmd(
        pattern: str = typer.Argument("*", help="Glob over analyzer names, e.g. 'fundus.*'."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """List every analyzer with its title, the slots it reads (for `analyze NAME --input SLOT=PATH`) and its
        model, or how to make one."""
        rows = analyzer_rows(pattern)
        if as_json:
            typer.echo(json.dumps(rows, indent=2, default=str))
            return
        table = Table(title="vitalens analyzers", show_lines=True)
        for col in ("name", "title", "slots (--input SLOT=PATH)", "model"):
            table.add_column(col, overflow="fold")
        for r in rows:
            model = r["artifact"] if r["ready"] else f"{r['artifact']}\n{r['unavailable_reason'] or ''}"
            table.add_row(r["name"], r["title"], "\n".join(slot_line(s) for s in r["slots"]), model)
        Console(width=200).print(table)
