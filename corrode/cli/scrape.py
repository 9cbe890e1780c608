"""`corrode scrape`: collect car photos from image search (or URL lists, or web pages) into a clean folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corrode.cli.app import (
    EXIT_FAILED,
    app,
    emit_json,
    fail_line,
    make_progress,
    note,
    progress_enabled,
    warn,
)
from corrode.errors import UsageError


def _filters(items: list[str]) -> dict[str, str]:
    filters = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise UsageError(f"--filter {item!r}: expected KEY=VALUE, e.g. type=photo or license=commercial")
        filters[key.strip()] = value.strip()
    return filters


@app.command("scrape")
def scrape_command(
    queries: Annotated[
        list[str] | None,
        typer.Argument(
            help='Search queries, one folder each (e.g. "rusty car" "car rust").', show_default=False
        ),
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", "-e", help="bing, google, baidu, flickr, urls or pages.")
    ] = "bing",
    max_images: Annotated[
        int | None,
        typer.Option(
            "--max", "-n", help="New images wanted per query; 0: no limit. [default: 100, all for urls/pages]"
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder (shared by all queries and runs).")
    ] = Path("data/raw"),
    sources: Annotated[
        Path | None,
        typer.Option("--from", help="URL list for --engine urls / pages: one URL a line, '-' for stdin."),
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            "-f",
            help="Engine filter KEY=VALUE, repeatable: type=photo, size=large, license=commercial, "
            "date=pastyear (bing/google/baidu as icrawler names them; flickr: photos.search arguments).",
        ),
    ] = None,
    min_side: Annotated[
        int, typer.Option("--min-side", help="Reject images whose short side is smaller.")
    ] = 128,
    max_pixels: Annotated[
        int, typer.Option("--max-pixels", help="Reject images with more pixels (decompression bombs).")
    ] = 100_000_000,
    max_bytes: Annotated[
        int,
        typer.Option(
            "--max-bytes", help="Cut off and reject a download past this many bytes (endless bodies too)."
        ),
    ] = 50_000_000,
    distance: Annotated[
        int, typer.Option("--distance", help="Perceptual-hash bits within which two images are duplicates.")
    ] = 8,
    threads: Annotated[int, typer.Option("--threads", "-j", help="Download threads.")] = 4,
    delay: Annotated[
        float, typer.Option("--delay", help="Seconds between two requests to the same host.")
    ] = 0.0,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds without data before giving up a URL.")
    ] = 10.0,
    retries: Annotated[int, typer.Option("--retries", help="Extra tries after a network failure.")] = 1,
    idle_timeout: Annotated[
        float, typer.Option("--idle-timeout", help="End a query when nothing arrived for this many seconds.")
    ] = 120.0,
    size: Annotated[
        int | None,
        typer.Option("--size", help="Also write copies with this short side under <out>/resized-<size>/."),
    ] = None,
    flickr_key: Annotated[
        str | None, typer.Option("--flickr-key", help="Flickr API key (default: $FLICKR_APIKEY).")
    ] = None,
    search_url: Annotated[
        str | None,
        typer.Option(
            "--search-url", help="Use this address instead of the engine's (a mirror or a test server)."
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show icrawler's log and every rejection.")
    ] = False,
    json_summary: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Download images for each query; keep only complete, large-enough, new ones, with their source.

    Every file is fully decoded first; non-images and images too small or too large are rejected.

    Exact and near duplicates are found across the whole --out folder; the largest copy is kept.

    Files are named by content hash, so a rerun adds only what is new; manifest.csv holds their source.

    Exit code 1 when a query brought nothing usable (a broken engine, say) or a --from URL failed.
    """
    from dataclasses import asdict

    from corrode.scrape import ScrapeConfig, scrape
    from corrode.scrape.engines import ENGINES

    if max_images is None:
        max_images = 100 if engine not in ENGINES or ENGINES[engine].search else 0
    config = ScrapeConfig(
        queries=tuple(queries or ()),
        engine=engine,
        out=out,
        max_images=max_images,
        sources=sources,
        filters=_filters(filters or []),
        min_side=min_side,
        max_pixels=max_pixels,
        max_bytes=max_bytes,
        near_distance=distance,
        threads=threads,
        host_delay=delay,
        timeout=timeout,
        retries=retries,
        idle_timeout=idle_timeout,
        resize=size,
        flickr_key=flickr_key,
        search_url=search_url,
        verbose=verbose,
    )
    if sources is not None and str(sources) != "-" and not sources.is_file():
        raise UsageError(f"{sources}: no such file")
    if sources is not None and ENGINES[engine].search:
        warn(f"--from is used by --engine urls or pages, not {engine}; ignored")

    tasks: dict[str, object] = {}
    # icrawler's own log lines and a live bar would write over each other: --verbose shows the log.
    progress = make_progress()
    if verbose:
        progress.disable = True

    def show(query_summary) -> None:
        task = tasks.get(query_summary.query)
        if task is None:
            total = max_images or query_summary.listed or None
            task = tasks[query_summary.query] = progress.add_task(query_summary.query, total=total)
        counts = (
            f"{query_summary.query}  kept {query_summary.new} · dup {query_summary.duplicates}"
            f" · rejected {query_summary.rejected} · had {query_summary.skipped}"
        )
        done = query_summary.new if max_images else query_summary.found
        progress.update(task, completed=done, description=counts)

    with progress:
        summary = scrape(config, progress=show if progress_enabled() and not verbose else None)

    show_each = verbose or not ENGINES[engine].search
    for query in summary.queries:
        if show_each:
            for url, reason in query.rejections:
                fail_line(f"{url}: {reason}")
        reasons = ", ".join(
            f"{count} {reason}" for reason, count in sorted(query.reasons.items(), key=lambda r: -r[1])
        )
        line = f"{query.query}: {query.new} new in {out / query.folder}"
        if query.replaced:
            line += f" ({query.replaced} replaced a smaller copy)"
        line += f", {query.duplicates} duplicates, {query.rejected} rejected"
        if reasons:
            line += f" ({reasons})"
        if query.skipped:
            line += f", {query.skipped} already had"
        note(line)
        if query.problem:
            fail_line(f"{query.query}: {query.problem}")
    if summary.resized:
        note(f"{summary.resized} resized copies written under {out / f'resized-{size}'}")
    if json_summary:
        emit_json(
            {
                "out": str(summary.out),
                "new": summary.new,
                "failed": summary.failed,
                **summary.totals(),
                "resized": summary.resized,
                "queries": [
                    {k: v for k, v in asdict(q).items() if k != "rejections"} | {"new": q.new}
                    for q in summary.queries
                ],
            }
        )
    if summary.failed:
        raise typer.Exit(EXIT_FAILED)
