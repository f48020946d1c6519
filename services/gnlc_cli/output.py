"""What the CLI prints: aligned tables with headers (Rich), times in UTC with local time
beside them, progress on long work. On a terminal tables have borders and colour; piped or
captured (scripts, tests) the same tables are plain aligned text with a header line, never
wrapped, and progress is not drawn."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

T = TypeVar("T")
PLAIN_WIDTH = 1000  # no wrapping when the output is not a terminal


def console(*, stderr: bool = False) -> Console:
    """A console for stdout (or stderr) as it is now: typer's test runner swaps the
    streams, so the console is made per use, never at import."""
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty() and os.environ.get("TERM") != "dumb"
    if terminal:
        return Console(file=stream, highlight=False, emoji=False)
    return Console(
        file=stream,
        width=PLAIN_WIDTH,
        no_color=True,
        highlight=False,
        emoji=False,
        force_terminal=False,
        soft_wrap=True,
    )


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    """Print ``rows`` under ``columns``; a None cell prints as empty."""
    out = console()
    fancy = out.is_terminal
    grid = Table(
        title=title if fancy else None,
        box=box.SIMPLE_HEAD if fancy else None,
        show_edge=False,
        pad_edge=False,
        header_style="bold" if fancy else "",
        title_justify="left",
    )
    for column in columns:
        grid.add_column(column, no_wrap=True)
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    if fancy:  # as wide as it needs: the terminal wraps a long line, nothing is cut
        wanted = Measurement.get(out, out.options.update_width(PLAIN_WIDTH), grid).maximum
        out.width = max(out.width, wanted)
        out.print(grid, crop=False)
        return
    with out.capture() as captured:
        out.print(grid)
    if title:
        out.print(title, markup=False)
    for text in captured.get().splitlines():
        out.print(text.rstrip(), markup=False)


def line(text: str = "") -> None:
    console().print(text, markup=False)


def parse_time(value: Any) -> datetime | None:
    """An API time (ISO 8601); a naive one (older APIs) is taken as UTC."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def utc(value: Any) -> str:
    """``2027-01-17 22:59 UTC`` (seconds shown when they are not zero)."""
    moment = parse_time(value)
    if moment is None:
        return ""
    moment = moment.astimezone(UTC)
    pattern = "%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M"
    return moment.strftime(pattern) + " UTC"


def local(value: Any, where: tzinfo | None = None) -> str:
    """The same moment in ``where`` (default: this machine's zone), with its offset:
    ``2027-01-18 04:44 +05:45``."""
    moment = parse_time(value)
    if moment is None:
        return ""
    moment = moment.astimezone(where) if where is not None else moment.astimezone()
    pattern = "%Y-%m-%d %H:%M:%S %z" if moment.second else "%Y-%m-%d %H:%M %z"
    text = moment.strftime(pattern)
    return f"{text[:-2]}:{text[-2:]}"  # +0545 -> +05:45


@contextmanager
def working(what: str) -> Iterator[None]:
    """A spinner with the elapsed time while one long call runs (terminal only)."""
    out = console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
        disable=not out.is_terminal,
    ) as progress:
        progress.add_task(what, total=None)
        yield


def track(items: Sequence[T], what: str, *, at_least: int = 200) -> Iterator[T]:
    """Iterate ``items`` with a progress bar (terminal only) when there are many."""
    if len(items) < at_least:
        yield from items
        return
    out = console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
        transient=True,
        disable=not out.is_terminal,
    ) as progress:
        task = progress.add_task(what, total=len(items))
        for item in items:
            yield item
            progress.advance(task)
