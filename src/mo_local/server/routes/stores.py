"""`/v1/stores`: list, claim, and the opaque vault blob with compare-and-set."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from mo_local.server.context import Context, CurrentPrincipal
from mo_local.server.errors import VaultTooLarge
from mo_local.server.models import (
    StoreInfo,
    VaultDocument,
    VaultStored,
    VaultUpload,
    decode_base64url,
    encode_base64url,
)
from mo_local.server.observability import RequestFacts, request_facts
from mo_local.server.problems import problem_responses
from mo_local.server.storage import StoreRow, Vault

router = APIRouter(prefix="/v1/stores", tags=["stores"])
Facts = Annotated[RequestFacts, Depends(request_facts)]


def _info(row: StoreRow) -> StoreInfo:
    return StoreInfo(store_id=row.store_id, head=row.head, vault_revision=row.vault_revision)


@router.get(
    "",
    response_model=list[StoreInfo],
    responses=problem_responses(401, 503),
    summary="The caller's stores",
)
async def list_stores(context: Context, principal: CurrentPrincipal) -> list[StoreInfo]:
    """The caller's stores with their heads and vault revisions."""
    rows = await run_in_threadpool(context.storage.list_stores, principal.account_id)
    return [_info(row) for row in rows]


@router.put(
    "/{store_id}",
    status_code=201,
    response_model=StoreInfo,
    responses={
        200: {"model": StoreInfo, "description": "The store was already yours"},
        **problem_responses(401, 404, 413, 422, 503),
    },
    summary="Claim a store id (201 new, 200 already yours, 404 someone else's)",
)
async def claim_store(
    store_id: UUID, response: Response, context: Context, principal: CurrentPrincipal, facts: Facts
) -> StoreInfo:
    """Claim a store id for the caller."""
    facts.store_id = str(store_id)
    row, created = await run_in_threadpool(
        context.storage.claim_store, principal.account_id, store_id
    )
    response.status_code = 201 if created else 200
    return _info(row)


@router.get(
    "/{store_id}/vault",
    response_model=VaultDocument,
    responses=problem_responses(401, 404, 422, 503),
    summary="The store's opaque vault header",
)
async def get_vault(
    store_id: UUID, context: Context, principal: CurrentPrincipal, facts: Facts
) -> VaultDocument:
    """The store's vault blob and revision."""
    facts.store_id = str(store_id)
    vault = await run_in_threadpool(context.storage.get_vault, principal.account_id, store_id)
    facts.bytes = len(vault.blob)
    return VaultDocument(revision=vault.revision, vault=encode_base64url(vault.blob))


@router.put(
    "/{store_id}/vault",
    response_model=VaultStored,
    responses=problem_responses(400, 401, 404, 409, 413, 422, 503),
    summary="Replace the vault if its revision is still `expected_revision` (compare-and-set)",
)
async def put_vault(
    store_id: UUID,
    body: VaultUpload,
    context: Context,
    principal: CurrentPrincipal,
    facts: Facts,
) -> VaultStored:
    """Compare-and-set the store's vault blob."""
    facts.store_id = str(store_id)
    blob = decode_base64url(body.vault)
    facts.bytes = len(blob)
    if len(blob) > context.settings.limits.max_vault_bytes:
        raise VaultTooLarge()
    revision = await run_in_threadpool(
        context.storage.put_vault,
        principal.account_id,
        store_id,
        body.expected_revision,
        Vault(body.revision, blob),
    )
    return VaultStored(revision=revision)
