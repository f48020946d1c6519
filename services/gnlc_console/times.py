"""Instants as the console shows them: in a city's zone and in the viewer's (the browser
names its zone in the ``tz`` cookie, set by ``static/console.js``; UTC until it does)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from gnlc_console.forms import zone

UTC_ZONE = ZoneInfo("UTC")


def viewer_zone(cookie: str | None) -> ZoneInfo:
    return zone(cookie or "") or UTC_ZONE


def _offset(moment: datetime) -> str:
    text = moment.strftime("%z")
    return f"{text[:3]}:{text[3:]}" if text else ""


@dataclass(frozen=True)
class Shown:
    """One instant, in the zone that matters most (``main``) and the viewer's beside it."""

    iso: str
    main: str
    main_zone: str
    viewer: str | None  # None when it is the same zone


def shown(
    instant: str | datetime | None, viewer: ZoneInfo, city_zone: str | None = None
) -> Shown | None:
    """``instant`` in ``city_zone`` (else the viewer's), with the viewer's time beside it
    when the zones differ."""
    if instant is None or instant == "":
        return None
    moment = datetime.fromisoformat(instant) if isinstance(instant, str) else instant
    first = zone(city_zone or "") or viewer
    here = moment.astimezone(first)
    main = f"{here:%a %d %b %Y, %H:%M} ({first.key}, UTC{_offset(here)})"
    other = None
    if first.key != viewer.key:
        there = moment.astimezone(viewer)
        same_day = there.date() == here.date()
        other = f"{there:%H:%M}" if same_day else f"{there:%a %d %b, %H:%M}"
        other += f" your time ({viewer.key})"
    return Shown(moment.isoformat(), main, first.key, other)
