"""The dead letters in the status API (operators only): list, one record with its body,
redrive one, redrive all that match a filter (``gnlc_status.dead_letters`` says where a
redrive goes).

(No ``from __future__ import annotations``: FastAPI reads the dependencies' annotations.)"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from gnlc_core.answers import ErrorDetail, Instant
from gnlc_core.errors import invalid_query
from gnlc_core.events import UtcDatetime
from gnlc_core.kafka import Topics
from gnlc_core.logs import get_logger
from gnlc_status import dead_letters as store
from gnlc_status.api import AUTH, Caller, EventQuery, Limit, Offset, Since, Until, operators

log = get_logger(__name__)

#: Publishes one record: (topic, key, value, headers).
Publish = Callable[[str, bytes | None, bytes, dict[str, str]], Awaitable[None]]
#: The most records one "redrive all" sends.
MAX_REDRIVE = 1000
#: The refusals one "redrive all" lists.
MAX_SKIPPED_SHOWN = 50

ChannelFilter = Annotated[
    str | None, Query(pattern=r"^(scheduler|email|webhook)$", description="The channel.")
]
ReasonFilter = Annotated[
    str | None, Query(min_length=1, max_length=200, description="A part of the reason.")
]
TopicFilter = Annotated[
    str | None, Query(min_length=1, max_length=255, description="The source topic.")
]
StateFilter = Annotated[
    str | None,
    Query(pattern=r"^(parked|redriven)$", description="parked (not redriven) or redriven."),
]
DeadLetterId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="The dead letter's id.")]


class DeadLetterOut(BaseModel):
    id: int
    topic: str
    partition: int
    offset: int
    channel: str
    source_topic: str | None
    reason: str
    recipient: str | None = Field(description="The recipient it was parked for, if one.")
    size: int = Field(description="The value's size in bytes.")
    event_id: str | None
    event_type: str | None
    parked_at: Instant
    redriven_at: Instant | None
    redriven_by: str | None
    redrive_count: int
    redrive_topic: str | None
    redrivable: bool = Field(description="Whether a redrive can send it anywhere.")
    redrive_note: str | None = Field(description="Where a redrive sends it, or why it cannot.")


class DeadLetterDetail(DeadLetterOut):
    key: str | None = Field(description="The record's key (UTF-8, undecodable bytes escaped).")
    body: str = Field(
        description=f"The value as text: JSON indented, control characters escaped, at most "
        f"{store.MAX_BODY_CHARS} characters."
    )
    body_truncated: bool


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    total: int = Field(description="How many match the filter.")
    next_offset: int | None


class RedriveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str = Field(
        default="operator",
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Who asks (kept with the record).",
    )
    force: bool = Field(default=False, description="Redrive again a record already redriven.")


class RedriveAllIn(RedriveIn):
    channel: str | None = Field(default=None, pattern=r"^(scheduler|email|webhook)$")
    source_topic: str | None = Field(default=None, min_length=1, max_length=255)
    reason: str | None = Field(default=None, min_length=1, max_length=200)
    event_id: str | None = Field(default=None, min_length=1, max_length=64)
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    limit: int = Field(default=MAX_REDRIVE, ge=1, le=MAX_REDRIVE)


class Skipped(BaseModel):
    id: int
    why: str


class RedriveAllOut(BaseModel):
    matched: int = Field(description="Records the filter selected (at most ``limit``).")
    redriven: list[int] = Field(description="Records sent (twins marked with them included).")
    skipped: list[Skipped] = Field(
        description=f"Why others were not (the first {MAX_SKIPPED_SHOWN})."
    )
    skipped_count: int


def _note(plan: store.Redrive | store.Refusal) -> str:
    if isinstance(plan, store.Refusal):
        return plan.why
    if plan.to_source:
        return f"back to {plan.topic}"
    return f"to the endpoint alone ({plan.topic})"


def dead_letter_router(
    topics: Topics, engine: Any, caller: Callable[..., Awaitable[Caller]], publish: Publish
) -> APIRouter:
    router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"], responses=AUTH)
    Who = Annotated[Caller, Depends(caller)]

    def out(row: dict[str, Any]) -> dict[str, Any]:
        plan = store.plan_redrive(topics, {**row, "value": b""})
        return {
            **row,
            "redrivable": isinstance(plan, store.Redrive),
            "redrive_note": _note(plan),
        }

    def filters_of(
        channel: str | None,
        source_topic: str | None,
        reason: str | None,
        event_id: str | None,
        state: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> store.Filters:
        if since and until and since >= until:
            raise invalid_query("since", "since must be before until")
        return store.Filters(
            channel=channel,
            source_topic=source_topic,
            reason=reason,
            event_id=event_id,
            redriven=None if state is None else state == "redriven",
            since=since,
            until=until,
        )

    @router.get("", summary="Dead letters, latest first, with their reasons")
    async def list_dead_letters(
        who: Who,
        channel: ChannelFilter = None,
        source_topic: TopicFilter = None,
        reason: ReasonFilter = None,
        event_id: EventQuery = None,
        state: StateFilter = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> DeadLetterPage:
        operators(who)
        filters = filters_of(channel, source_topic, reason, event_id, state, since, until)
        rows = await store.listed(engine, filters, limit=limit + 1, offset=offset)
        return DeadLetterPage(
            items=[DeadLetterOut.model_validate(out(row)) for row in rows[:limit]],
            total=await store.count(engine, filters),
            next_offset=offset + limit if len(rows) > limit else None,
        )

    @router.get("/counts", summary="Dead letters not redriven yet, per channel")
    async def waiting(who: Who) -> dict[str, int]:
        operators(who)
        return await store.not_redriven(engine)

    async def found(ident: int) -> dict[str, Any]:
        row = await store.one(engine, ident)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead letter {ident}")
        return row

    @router.get(
        "/{dead_letter_id}",
        summary="One dead letter with its key and body (bounded, escaped)",
        responses={404: {"model": ErrorDetail}},
    )
    async def show(dead_letter_id: DeadLetterId, who: Who) -> DeadLetterDetail:
        operators(who)
        row = await found(dead_letter_id)
        body, cut = store.body_view(row["value"])
        key = row["key"]
        return DeadLetterDetail.model_validate(
            {
                **out(row),
                "key": store.body_view(key, 200)[0] if key is not None else None,
                "body": body,
                "body_truncated": cut,
            }
        )

    async def redrive_row(row: dict[str, Any], by: str, force: bool) -> list[int] | str:
        """Redrive one; the ids marked, or why not (409)."""
        plan = store.plan_redrive(topics, row)
        if isinstance(plan, store.Refusal):
            return f"dead letter {row['id']} cannot be redriven: {plan.why}"
        claimed = await store.claim(
            engine,
            row,
            by=by,
            topic=plan.topic,
            twins=plan.to_source,
            force=force,
            now=datetime.now(UTC),
        )
        if claimed is None:
            return (
                f"dead letter {row['id']} was already redriven; ask again with force to send "
                "it once more"
            )
        try:
            await publish(plan.topic, plan.key, plan.value, plan.headers)
        except Exception as exc:
            await store.unclaim(engine, claimed)
            log.warning("redrive failed", id=row["id"], error=type(exc).__name__)
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"the broker did not take the record ({type(exc).__name__}); nothing changed",
            ) from None
        log.info("dead letter redriven", id=row["id"], topic=plan.topic, by=by)
        return list(claimed.ids)

    @router.post(
        "/{dead_letter_id}/redrive",
        summary="Send one dead letter again (where: see redrive_note)",
        responses={
            404: {"model": ErrorDetail},
            409: {"model": ErrorDetail, "description": "Already redriven, or not redrivable."},
        },
    )
    async def redrive(
        dead_letter_id: DeadLetterId, who: Who, body: RedriveIn | None = None
    ) -> DeadLetterOut:
        operators(who)
        asked = body or RedriveIn()
        row = await found(dead_letter_id)
        if not asked.force and row["redriven_at"] is not None:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"dead letter {dead_letter_id} was already redriven; ask again with force to "
                "send it once more",
            )
        done = await redrive_row(row, asked.by, asked.force)
        if isinstance(done, str):
            raise HTTPException(status.HTTP_409_CONFLICT, done)
        return DeadLetterOut.model_validate(out(await found(dead_letter_id)))

    @router.post(
        "/redrive",
        summary=f"Redrive every dead letter a filter selects (at most {MAX_REDRIVE})",
    )
    async def redrive_all(who: Who, body: RedriveAllIn) -> RedriveAllOut:
        operators(who)
        filters = filters_of(
            body.channel,
            body.source_topic,
            body.reason,
            body.event_id,
            None if body.force else "parked",
            body.since,
            body.until,
        )
        ids = await store.ids_of(engine, filters, limit=body.limit)
        redriven: list[int] = []
        skipped: list[Skipped] = []
        for ident in ids:
            if ident in redriven:  # marked with its twin
                continue
            row = await store.one(engine, ident)
            if row is None:
                continue
            done = await redrive_row(row, body.by, body.force)
            if isinstance(done, str):
                skipped.append(Skipped(id=ident, why=done))
            else:
                redriven.extend(i for i in done if i not in redriven)
        return RedriveAllOut(
            matched=len(ids),
            redriven=redriven,
            skipped=skipped[:MAX_SKIPPED_SHOWN],
            skipped_count=len(skipped),
        )

    return router
