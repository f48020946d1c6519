"""The dashboard's chart of deliveries by channel and state, pure: bars laid out on the
server (an SVG of rectangles and text; no script, no chart library) from the status API's
``/v1/status/summary`` counts. A table beside it says the same for screen readers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: The states in the order a reader expects (the notice's life), then any other.
STATE_ORDER = (
    "scheduled",
    "sent",
    "held",
    "retrying",
    "delivered",
    "failed",
    "dropped",
    "unsubscribed",
    "bounced",
)
CHANNEL_ORDER = ("schedule", "email", "webhook")
#: A colour per state (each at least 4.5:1 on white, so the bars read like the text).
COLOURS = {
    "delivered": "#1e6b34",
    "sent": "#0b5cab",
    "scheduled": "#4a5360",
    "held": "#8a4b00",
    "retrying": "#8a4b00",
    "failed": "#a3201a",
    "bounced": "#a3201a",
    "dropped": "#5b4a86",
    "unsubscribed": "#5b4a86",
}
#: The SVG's geometry (viewBox units): a label column, the bars, the count after each.
LABEL_WIDTH = 100
BAR_WIDTH = 150
ROW_HEIGHT = 22
WIDTH = LABEL_WIDTH + BAR_WIDTH + 50


@dataclass(frozen=True)
class Bar:
    state: str
    count: int
    width: float  # in viewBox units, at least 1 for a count above zero
    y: int
    colour: str


@dataclass(frozen=True)
class ChannelBars:
    channel: str
    total: int
    bars: tuple[Bar, ...]
    height: int


def _ordered(names: Mapping[str, int] | tuple[str, ...], order: tuple[str, ...]) -> list[str]:
    known = [name for name in order if name in names]
    return known + sorted(name for name in names if name not in order)


def chart(counts: Mapping[str, Mapping[str, int]]) -> list[ChannelBars]:
    """One group of bars per channel, one bar per state; every bar on one scale (the
    largest count is the full width)."""
    largest = max((n for states in counts.values() for n in states.values()), default=0)
    groups: list[ChannelBars] = []
    for channel in _ordered(dict.fromkeys(counts, 0), CHANNEL_ORDER):
        states = counts[channel]
        bars = []
        for row, state in enumerate(_ordered(dict(states), STATE_ORDER)):
            count = states[state]
            width = BAR_WIDTH * count / largest if largest else 0.0
            bars.append(
                Bar(
                    state,
                    count,
                    round(max(width, 1.0) if count else 0.0, 1),
                    row * ROW_HEIGHT,
                    COLOURS.get(state, "#4a5360"),
                )
            )
        groups.append(
            ChannelBars(channel, sum(states.values()), tuple(bars), len(bars) * ROW_HEIGHT)
        )
    return groups
