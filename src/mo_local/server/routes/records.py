"""`/v1/stores/{store_id}/push` and `/pull` (with long-poll)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from mo_local.server.context import CurrentAccess, ServerContext
from mo_local.server.errors import DuplicateEventId, PageTooLarge, RecordTooLarge, TooManyRecords
from mo_local.server.models import (
    MAX_COUNTER,
    PullResponse,
    PushRequest,
    PushResponse,
    decode_base64url,
    encode_base64url,
)
from mo_local.server.problems import problem_responses
from mo_local.server.record_log import IncomingRecord, PullPage
from mo_local.server.storage import Credentials

router = APIRouter(prefix="/v1/stores", tags=["records"])


@router.post(
    "/{store_id}/push",
    response_model=PushResponse,
    responses=problem_responses(400, 401, 404, 409, 413, 422, 503),
    summary="Append records after expected_head (idempotent per event id)",
)
async def push(store_id: UUID, body: PushRequest, access: CurrentAccess) -> Response:
    """Append records; see `record_log.RecordLog.push` for the rules."""
    context, facts = access.context, access.facts
    facts.store_id = str(store_id)
    limits = context.settings.limits
    if len(body.records) > limits.max_records_per_push:
        raise TooManyRecords(f"At most {limits.max_records_per_push} records per push")
    incoming: list[IncomingRecord] = []
    seen: set[UUID] = set()
    for item in body.records:
        if item.event_id in seen:
            raise DuplicateEventId(extra={"event_id": str(item.event_id)})
        seen.add(item.event_id)
        data = decode_base64url(item.record)
        if len(data) > limits.max_record_bytes:
            raise RecordTooLarge(f"At most {limits.max_record_bytes} bytes per record")
        incoming.append(IncomingRecord(item.event_id, data))
    facts.records = len(incoming)
    facts.bytes = sum(len(item.record) for item in incoming)
    outcome = await context.record_log.push(
        access.credentials, store_id, body.expected_head, incoming
    )
    if outcome.new_records:
        context.signals.notify(store_id)
        context.metrics.records_pushed.inc(outcome.new_records)
        context.metrics.bytes_pushed.inc(outcome.new_bytes)
    return _json(
        {
            "head": outcome.head,
            "assigned": [
                {"event_id": str(event_id), "seq": seq} for event_id, seq in outcome.assigned
            ],
        }
    )


@router.get(
    "/{store_id}/pull",
    response_model=PullResponse,
    responses=problem_responses(401, 404, 422, 503),
    summary="Records after `since`, in order; waits up to `wait` seconds for new ones",
)
async def pull(
    store_id: UUID,
    access: CurrentAccess,
    since: Annotated[int, Query(ge=0, le=MAX_COUNTER, description="last sequence seen")] = 0,
    limit: Annotated[int | None, Query(ge=1, le=MAX_COUNTER, description="page size")] = None,
    wait: Annotated[float, Query(ge=0, le=3600, description="long-poll seconds")] = 0.0,
) -> Response:
    """A page of records after `since`, long-polling up to `wait` seconds."""
    context, facts = access.context, access.facts
    facts.store_id = str(store_id)
    max_page = context.settings.limits.max_page_size
    if limit is None:
        limit = max_page
    elif limit > max_page:
        raise PageTooLarge(f"At most {max_page} records per page")
    page = await _pull_or_wait(context, access.credentials, store_id, since, limit, wait)
    facts.records = len(page.records)
    facts.bytes = sum(len(item.record) for item in page.records)
    context.metrics.records_pulled.inc(facts.records)
    context.metrics.bytes_pulled.inc(facts.bytes)
    return _json(
        {
            "records": [
                {
                    "seq": item.seq,
                    "event_id": str(item.event_id),
                    "record": encode_base64url(item.record),
                }
                for item in page.records
            ],
            "head": page.head,
            "has_more": page.has_more,
        }
    )


def _json(document: dict[str, object]) -> Response:
    # The hot paths skip re-validating their own output against the response model
    # (documented by `response_model`, checked by the schemathesis conformance test).
    return Response(json.dumps(document, separators=(",", ":")), media_type="application/json")


async def _pull_or_wait(
    context: ServerContext,
    credentials: Credentials,
    store_id: UUID,
    since: int,
    limit: int,
    wait: float,
) -> PullPage:
    """Read a page; if it is empty and the caller may wait, sleep until a push wakes us."""
    settings = context.settings
    wait = min(wait, settings.max_wait_seconds)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    if wait > 0 and context.listener is not None:
        await context.listener.ensure_started(timeout_seconds=2.0)
    while True:
        # Watch before reading, so a push between the read and the wait still wakes us.
        with context.signals.watch(store_id) as pushed:
            page = await context.record_log.pull(credentials, store_id, since, limit)
            remaining = deadline - loop.time()
            if page.records or remaining <= 0:
                return page
            context.metrics.long_polls.inc()
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        pushed.wait(), min(remaining, settings.long_poll_recheck_seconds)
                    )
            finally:
                context.metrics.long_polls.dec()
