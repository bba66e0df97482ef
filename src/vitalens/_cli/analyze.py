"""``vitalens analyze NAME --input SLOT=PATH ...``: run one registered analyzer on local files and print the result.

Why generic: the command knows no analyzer. ``NAME`` is any registered analyzer (a plug-in's too); its slots come
from its contract, each file is read by its slot (:meth:`vitalens.slots.SlotSpec.read`), and ``--json`` prints the
contract's JSON document, the same one ``POST /api/v1/predict/NAME`` answers. An analyzer's aliases (its contract's
``aliases``) are commands too, with the options the alias declares and its companions run alongside: the first
version's ``analyze fundus`` and ``analyze ecg RECORD`` are such aliases, so no command here names an analyzer.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from vitalens._cli._common import err_console, user_errors

__all__ = ["register", "analyze_app", "print_result", "run_named", "parse_assignments"]

logger = logging.getLogger(__name__)


class _AnalyzeGroup(TyperGroup):
    """``analyze`` resolves a registered analyzer name to the generic command, and an analyzer's alias (its
    contract's ``aliases``) to that alias's command; none is written here."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        from vitalens.analyzers import is_analyzer, resolve_alias

        if is_analyzer(cmd_name):
            command = _generic_command()
            command.help = _named_help(cmd_name)
            return command
        short = resolve_alias(cmd_name)
        return None if short is None else _alias_command(*short)

    def list_commands(self, ctx: Any) -> list[str]:
        """The short names are listed as commands (``analyze --help``); full names are listed by ``analyzers``."""
        from vitalens.analyzers import list_aliases

        return [*super().list_commands(ctx), *list_aliases()]

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-"):
            try:
                found = self.get_command(ctx, name)
            except Exception as exc:  # noqa: BLE001 - a broken plug-in: one line, exit 2
                err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
                ctx.exit(2)
            if found is None:
                from vitalens._naming import unknown_name_error
                from vitalens.analyzers import list_aliases, list_analyzers

                error = unknown_name_error("analyzer", name, [*list_analyzers(), *list_aliases(), *self.commands])
                err_console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
                ctx.exit(2)
        return super().resolve_command(ctx, args)

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        formatter.write_usage(ctx.command_path, "NAME --input SLOT=PATH ... [--age N] [--json] [--explain DIR]")


analyze_app = typer.Typer(
    cls=_AnalyzeGroup,
    help=(
        "Analyse local files with one analyzer: `vitalens analyze NAME --input SLOT=PATH ...` for any analyzer "
        "`vitalens analyzers` lists (decision support, not a diagnosis). The short names below are analyzers' "
        "aliases."
    ),
    no_args_is_help=True,
)


def parse_assignments(values: list[str], *, option: str, separator: str = "=") -> list[tuple[str, str]]:
    """``["fundus_left=L.jpg", ...]`` → ``[("fundus_left", "L.jpg"), ...]``; a value without ``=`` is an error."""
    pairs = []
    for value in values:
        key, sep, rest = value.partition(separator)
        if not sep or not key.strip() or not rest.strip():
            raise ValueError(f"{option} takes KEY{separator}VALUE, got {value!r}")
        pairs.append((key.strip(), rest.strip()))
    return pairs


def run_named(
    name: str,
    files: dict[str, Path],
    values: dict[str, str],
    *,
    hints: dict[str, dict[str, str]] | None = None,
    explain: bool = False,
    artifact: Path | None = None,
) -> Any:
    """Read each file by its slot, decode each value, and run analyzer ``name``; errors are ``VitalensError``s.

    Args:
        name: a registered analyzer.
        files: slot → local file (image/ECG slots).
        values: slot → text (number, category and text slots: ``age``, ``sex``, ``notes``).
        hints: slot → hint → value (``{"ecg": {"fs_hz": "500"}}``).
        explain: compute the explanations (maps).
        artifact: a model folder instead of the bundled one.
    """
    from vitalens.analyzers import create_analyzer, get_contract
    from vitalens.config import get_settings
    from vitalens.domain import StudyInputs
    from vitalens.errors import ArtifactError, InputError
    from vitalens.slots import get_slot

    contract = get_contract(name)
    settings = get_settings()
    hints = hints or {}
    sent = [*files, *values, *hints]
    unknown = sorted({s for s in sent if s not in contract.slots})
    if unknown:
        raise InputError(
            f"{name} reads {', '.join(contract.slots)}; it takes no {', '.join(unknown)}", field=unknown[0]
        )
    decoded: dict[str, Any] = {}
    for slot, path in files.items():
        spec = get_slot(slot)
        if not spec.is_file:
            raise InputError(f"takes a value, not a file: --input {slot}=VALUE", field=slot)
        decoded[spec.attribute] = spec.read(
            path,
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
            hints=hints.get(slot),
            limits=contract.limits_for(slot),
        ).value
    for slot, text in values.items():
        spec = get_slot(slot)
        if spec.is_file:
            raise InputError(f"takes a file: --input {slot}=PATH", field=slot)
        value = spec.decode(text).value
        spec.check(value)
        decoded[spec.attribute] = value
    analyzer = create_analyzer(name, artifact=artifact)
    ready = analyzer.availability()
    if artifact is None and not ready.ready:  # the bundled one is missing: say how to make it
        raise ArtifactError(ready.reason)
    return analyzer(StudyInputs(**decoded), explain=explain)


def findings_value(analyzer: str) -> str:
    """What the analyzer's findings' numbers are, from the findings blocks the page and the PDF draw
    (:func:`vitalens.reports.sections.analyzer_blocks`: ``Probability``, or a score's name such as ``Anomaly
    score``); ``Probability or score`` where its blocks differ."""
    from vitalens.analyzers import Findings
    from vitalens.reports.sections import analyzer_blocks

    values = {b.value for b in analyzer_blocks(analyzer) if isinstance(b, Findings)}
    return values.pop() if len(values) == 1 else "Probability" if not values else "Probability or score"


def print_result(result: object, console: Console | None = None) -> None:
    """Human-readable table of a result: findings, proxies, band, measurements, provenance, notice."""
    from vitalens.domain import AnalysisResult

    if not isinstance(result, AnalysisResult):
        raise TypeError(f"expected an AnalysisResult, got {type(result).__name__}")
    console = console or Console()
    if result.demonstration:
        console.print(f"[bold yellow]DEMONSTRATION MODEL[/] — trained on {result.trained_on}; not for clinical use.")
    if result.findings:
        table = Table(title=f"{result.analyzer} · {result.model.name} {result.model.version}")
        per_input = any(f.input_name for f in result.findings)
        columns = ("input", "code", "condition", findings_value(result.analyzer).lower(), "threshold", "positive")
        for col in columns if per_input else columns[1:]:
            table.add_column(col)
        for f in sorted(result.findings, key=lambda f: (f.input_name or "", -f.probability)):
            row = [
                f.code,
                f.name,
                f"{f.probability:.3f}",
                f"{f.threshold:.3f}" if f.threshold is not None else "—",
                "[bold red]yes[/]" if f.positive else "no",
            ]
            table.add_row(*([f.input_name or ""] if per_input else []), *row)
        console.print(table)
    else:
        console.print(f"{result.analyzer} · {result.model.name} {result.model.version}")
    if result.proxies:
        proxies = ", ".join(f"{k} {v:.3f}" for k, v in result.proxies.items())
        console.print(f"Scores: {proxies}")
    if result.band is not None:
        console.print(f"Risk band: [bold]{result.band.value}[/]")
    if result.tier is not None:
        console.print(f"Risk tier: [bold]{result.tier.value}[/]")
    if result.measurements:
        mt = Table(title="Measurements")
        for col in ("name", "value", "unit", "reference", "flag"):
            mt.add_column(col)
        for m in result.measurements:
            ref = (
                f"{m.reference_low}–{m.reference_high}"
                if m.reference_low is not None or m.reference_high is not None
                else ""
            )
            mt.add_row(m.name, "not computed" if m.value is None else f"{m.value:.1f}", m.unit, ref, m.flag or "")
        console.print(mt)
    if result.explanation:
        console.print(result.explanation)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    console.print(f"[italic]{result.decision_support_notice}[/]")


def write_explanations(result: object, folder: Path) -> list[Path]:
    """Write each explanation's overlay PNG into ``folder`` as ``<input>_<target>_<method>.png``."""
    from vitalens.domain import AnalysisResult

    if not isinstance(result, AnalysisResult):
        raise TypeError(f"expected an AnalysisResult, got {type(result).__name__}")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for e in result.explanations:
        if e.overlay_png is None:
            continue
        path = folder / f"{e.input_name}_{e.target}_{e.method}.png".replace("/", "-")
        path.write_bytes(e.overlay_png)
        written.append(path)
    return written


def emit(name: str, result: Any, *, as_json: bool, explain: Path | None) -> None:
    """Write the overlays, then print the contract's JSON document or the table."""
    from vitalens.service.ops.predict import result_document

    if explain is not None:
        for path in write_explanations(result, explain):
            logger.info("wrote %s", path)
    if as_json:
        typer.echo(json.dumps(result_document(name, result), indent=2))
    else:
        print_result(result)


_generic_app = typer.Typer(add_completion=False)


@_generic_app.command(context_settings={"help_option_names": ["--help", "-h"]})
@user_errors
def _analyze_named(
    ctx: typer.Context,
    inputs: list[str] = typer.Option(
        [], "--input", "-i", help="SLOT=PATH for a file slot, SLOT=VALUE for a number/choice/text slot; repeat."
    ),
    hints: list[str] = typer.Option([], "--hint", help="SLOT.HINT=VALUE for the slot's decoder, e.g. ecg.fs_hz=500."),
    age: str | None = typer.Option(None, "--age", help="Patient age in years (the `age` slot), where it is read."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (the predict API's document)."),
    explain: Path | None = typer.Option(None, "--explain", help="Compute the maps and write their overlays here."),
    artifact: Path | None = typer.Option(None, "--artifact", help="Model artifact folder (default: bundled)."),
) -> None:
    """Run the analyzer NAME on local files (its slots: `vitalens analyzers NAME`)."""
    from vitalens.slots import get_slot

    name = ctx.info_name or ""
    files: dict[str, Path] = {}
    values: dict[str, str] = {}
    for slot, value in parse_assignments(inputs, option="--input"):
        if slot in files or slot in values:
            raise ValueError(f"--input {slot} given twice")
        if get_slot(slot).is_file:
            files[slot] = Path(value)
        else:
            values[slot] = value
    if age is not None:
        values["age"] = age
    by_slot: dict[str, dict[str, str]] = {}
    for key, value in parse_assignments(hints, option="--hint"):
        slot, dot, hint = key.partition(".")
        if not dot:
            raise ValueError(f"--hint takes SLOT.HINT=VALUE, got {key!r}")
        by_slot.setdefault(slot, {})[hint] = value
    result = run_named(name, files, values, hints=by_slot, explain=explain is not None, artifact=artifact)
    emit(name, result, as_json=as_json, explain=explain)


def _named_help(name: str) -> str:
    """The help of ``analyze NAME``: the analyzer's title and what it reads, from its contract."""
    from vitalens.analyzers import get_contract
    from vitalens.slots import get_slot

    contract = get_contract(name)
    lines = [f"{contract.title} ({name}): {contract.description}", "", f"Needs {contract.requirement_text()}."]
    for use in contract.uses:
        spec = get_slot(use.slot)
        how = f"--input {spec.name}=PATH" if spec.is_file else f"--input {spec.name}=VALUE"
        hints = "".join(f" [--hint {spec.name}.{h.name}=…]" for h in spec.hints)
        lines.append(f"{how}{hints}: {spec.title}{'' if use.required or use.any_of else ' (optional)'}.")
    lines += ["", "Decision support only, not a diagnosis."]
    return "\n\n".join(line for line in lines if line)


def _generic_command() -> Any:
    return typer.main.get_command(_generic_app)


# -- the short names --------------------------------------------------------------------------------------------
def _alias_function(contract: Any, alias: Any) -> Any:
    """The command of one alias, as a function whose signature Typer reads: one option (or the positional
    argument) per alias field, then ``--json``, ``--explain DIR``, ``--plot FILE`` and ``--artifact``."""
    import inspect

    from vitalens.slots import NumberLimits, get_slot

    fields = alias.fields_for(contract.uses)
    required = set(contract.inputs)
    params: list[inspect.Parameter] = []
    for i, f in enumerate(fields):
        spec = get_slot(f.slot)
        info: Any
        if f.hint is not None:
            hint = spec.hint(f.hint)
            kind: Any = float | None if isinstance(hint.limits, NumberLimits) else str | None
            help_text = f.description or hint.description
            info = typer.Option(None, f.cli_option, help=help_text)
        else:
            base: Any = Path if spec.is_file else str
            needed = f.slot in required
            kind = base if needed else base | None
            help_text = f.description or spec.description or spec.title
            if f.cli_option == "":
                info = typer.Argument(... if needed else None, help=help_text, metavar=f.name.upper())
            else:
                info = typer.Option(... if needed else None, f.cli_option, help=help_text)
        params.append(inspect.Parameter(f"field_{i}", inspect.Parameter.KEYWORD_ONLY, default=info, annotation=kind))
    explained = "Write the explanation overlays (PNG) into this folder."
    for name, kind, info in (
        ("as_json", bool, typer.Option(False, "--json", help="Print the result as JSON (the predict API's document).")),
        ("explain", Path | None, typer.Option(None, "--explain", help=explained)),
        ("plot", Path | None, typer.Option(None, "--plot", help="Write the first explanation figure here (PNG).")),
        ("artifact", Path | None, typer.Option(None, "--artifact", help="Model artifact folder (default: bundled).")),
    ):
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=kind))

    @user_errors
    def command(**sent: Any) -> None:
        by_name = {f.name: sent[f"field_{i}"] for i, f in enumerate(fields)}
        _run_alias(
            contract,
            alias,
            by_name,
            as_json=sent["as_json"],
            explain=sent["explain"],
            plot=sent["plot"],
            artifact=sent["artifact"],
        )

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__name__ = f"analyze_{alias.name.replace('-', '_')}"
    return command


def _alias_help(contract: Any, alias: Any) -> str:
    also = f" With {', '.join(contract.companions)} on the same input." if contract.companions else ""
    return f"{contract.description or contract.title}. Short form of `vitalens analyze {contract.name}`.{also}"


def _alias_command(contract: Any, alias: Any) -> Any:
    one = typer.Typer(add_completion=False)
    one.command(name=alias.name, help=_alias_help(contract, alias))(_alias_function(contract, alias))
    return typer.main.get_command(one)


def _run_alias(
    contract: Any,
    alias: Any,
    sent: dict[str, Any],
    *,
    as_json: bool,
    explain: Path | None,
    plot: Path | None,
    artifact: Path | None,
) -> None:
    """Run the analyzer on the alias's fields (and its companions on the same files), write the figures, print."""
    from vitalens.service.ops.predict import alias_answer, alias_inputs, result_document, run_companions
    from vitalens.slots import get_slot

    slots, hints = alias_inputs(alias.fields_for(contract.uses), sent)
    files = {s: Path(v) for s, v in slots.items() if get_slot(s).is_file}
    values = {s: str(v) for s, v in slots.items() if not get_slot(s).is_file}
    wanted = alias.always_explain or explain is not None or plot is not None
    result = run_named(contract.name, files, values, hints=hints, explain=wanted, artifact=artifact)

    def companion(other: Any) -> Any:
        def mine(d: dict[str, Any]) -> dict[str, Any]:
            return {s: v for s, v in d.items() if s in other.slots}

        return run_named(other.name, mine(files), mine(values), hints=mine(hints))

    companions = run_companions(contract, companion)
    if plot is not None:
        figure = next((e.overlay_png for e in result.explanations if e.overlay_png), None)
        if figure is None:
            raise ValueError("no figure to plot: the analysis made no explanation")
        plot.write_bytes(figure)
        logger.info("wrote %s", plot)
    if explain is not None:
        for path in write_explanations(result, explain):
            logger.info("wrote %s", path)
    if as_json:
        docs = {n: c if isinstance(c, Exception) else result_document(n, c) for n, c in companions.items()}
        answer = alias_answer(alias, result_document(contract.name, result), result, docs, explain=False)
        typer.echo(json.dumps(answer, indent=2))
        return
    print_result(result)
    _print_companions(alias, companions)
    from vitalens.service.ops.predict import attribution_summary

    for code, s in attribution_summary(result).items():
        leads = ", ".join(s["top_leads"])
        typer.echo(f"  {code} attribution ({s['method']}): leads {leads}, peak at {s['peak_time_s']} s")


def _print_companions(alias: Any, companions: dict[str, Any]) -> None:
    """One line per companion measurement (or why it was not measured), under the main table."""
    for result in companions.values():
        if isinstance(result, Exception):
            typer.echo(f"  {alias.companions_key} not measured: {result}")
            continue
        for m in result.measurements:
            value = "not computed" if m.value is None else f"{m.value:.0f} {m.unit}"
            typer.echo(f"  {m.name}: {value}" + (f" ({m.flag})" if m.flag else ""))


def register(app: typer.Typer) -> None:
    app.add_typer(analyze_app, name="analyze")
