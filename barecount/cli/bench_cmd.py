"""`barecount bench`: BareCount against plain DuckDB SQL doing the same work, at several scales."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from barecount.cli.console import err, out, print_json
from barecount.config.project import ProjectPaths
from barecount.errors import UsageError


def _scales(text: str) -> list[float]:
    try:
        scales = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--scale: expected scale factors separated by commas, e.g. 0.1,1 (got {text!r})") from None
    if not scales or any(s <= 0 for s in scales):
        raise UsageError(f"--scale: every scale factor must be greater than 0 (got {text!r})")
    return scales


def bench(
    scale: Annotated[
        str, typer.Option("--scale", metavar="SF[,SF...]", help="TPC-H scale factors to measure, e.g. 0.1,1,5.")
    ] = "0.1,1",
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Runs per scale; the report shows the median.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of tables.")] = False,
    scaling: Annotated[
        bool,
        typer.Option("--scaling/--no-scaling", help="Also time 1, 12 and all periods in a run, and one at a time."),
    ] = True,
    output: Annotated[
        Path | None, typer.Option("--output", help="Markdown report to write (default: bench/results.md).")
    ] = None,
    work: Annotated[
        Path | None, typer.Option("--work", help="Folder for sample data and warehouses (default: data/bench).")
    ] = None,
    periods: Annotated[
        int,
        typer.Option("--periods", min=2, help="BigQuery profiles: periods of the larger run (the first run has one)."),
    ] = 4,
) -> None:
    """Time the whole pipeline (every asset, check and ledger entry, one single-run backfill, forced) against a
    plain-DuckDB reference doing the same work; report per step, with peak memory, rows/s and ratios.

    On a BigQuery profile (`--profile bigquery-emulator`), time forced runs of one period and of `--periods`
    periods there and on the local DuckDB file, and count BigQuery's jobs per run and per period (first scale
    only; default report bench/results-<profile>.md)."""
    from barecount.config.profiles import load_settings

    scales = _scales(scale)
    paths = ProjectPaths.discover()
    settings = load_settings(paths)
    target = output or paths.root / "bench" / (
        f"results-{settings.profile.name}.md" if settings.on_bigquery else "results.md"
    )
    folder = (work or paths.root / "data" / "bench").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    command = "barecount " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else "barecount bench"
    target.parent.mkdir(parents=True, exist_ok=True)
    with err.status("benchmarking") as status:
        if settings.on_bigquery:
            from barecount.devtools.bench.bigquery import bigquery_markdown, bigquery_table, run_bigquery_bench

            measured = run_bigquery_bench(settings, folder, scales[0], periods, status.update)
            text, shown, as_data = bigquery_markdown(measured, command), [bigquery_table(measured)], measured.as_json
        else:
            from barecount.devtools.bench.report import markdown, tables
            from barecount.devtools.bench.suite import run_bench

            report = run_bench(settings, folder, scales, repeat, scaling, status.update)
            text, shown, as_data = markdown(report, command), tables(report), report.as_json
    target.write_text(text, encoding="utf-8")
    if as_json:
        print_json(as_data())
        return
    for table in shown:
        out.print(table)
    out.print(f"Report written to {paths.relative(target)}")
