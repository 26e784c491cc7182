"""`POST /documents`: upload a document as `multipart/form-data`, the way files are sent (the
GraphQL `uploadDocument` mutation carries base64 within the GraphQL body limit).

Fields: `file` (the document; its filename is the title), optional `collection` (`personal`,
the default, or `tenant` for admins), optional `clientMutationId`. Authenticated like GraphQL
(`Authorization: Bearer <access token>` or an API key) and charged to the same per-minute
operation budget. The answer is `{"documentId", "position", "duplicate"}` (201), or
`{"error": {"code", "message"}}` with the code GraphQL would give (`BAD_USER_INPUT` for an
unsupported or empty file, `PAYLOAD_TOO_LARGE` above PARLEY_DOCUMENT_MAX_BYTES, …). Browsers'
cross-origin requests are refused unless their origin is an allowed CORS origin.

`GET /documents/{id}` answers the file as uploaded (its sniffed type, `Content-Disposition:
attachment`) to whoever may read the document, else 404.
"""

from collections.abc import Callable
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.api_key_verifier import ApiKeyVerifier
from api.browser_session import check_origin
from api.context import ParleyContext
from api.oidc_sign_in import error_response
from api.operation_limits import take_operation
from api.services import Services
from commands.messages import UploadDocument
from commands.results import Written
from domain.base import parse_id
from domain.document import Collection
from domain.errors import InvalidInput, NotFound, ParleyError
from domain.policy import acting_service_account, acting_user, visible_document
from infra.settings import Settings

PATH = "/documents"
FORM_OVERHEAD = 64 * 1024
"""Room for the multipart framing and the other fields beside the file."""


def documents_router(
    settings: Settings,
    services: Callable[[], Services],
    api_keys: Callable[[], ApiKeyVerifier | None],
) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    trusted_origins = frozenset(settings.cors_allowed_origins)

    @router.post(PATH)
    async def upload(request: Request) -> Response:
        try:
            check_origin(request, trusted_origins)
            ctx = ParleyContext(services(), api_keys())
            ctx.request = request
            await ctx.authenticate()
            ctx.actor()  # refuse an anonymous caller before reading the body
            await take_operation(ctx)
            try:
                form = await request.form(max_files=1, max_fields=4, max_part_size=FORM_OVERHEAD)
            except HTTPException as e:  # a malformed body, a second file, a field too long
                raise InvalidInput(
                    f"the upload is not a multipart form Parley takes: {e.detail}"
                ) from None
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise InvalidInput("send the document as the multipart field `file`")
            data = await file.read()
            collection = form.get("collection") or Collection.PERSONAL.value
            key = form.get("clientMutationId")
            written: Written = await ctx.execute(
                lambda: UploadDocument(
                    filename=file.filename or "document",
                    data=data,
                    declared_type=file.content_type,
                    collection=Collection(str(collection).lower())
                    if str(collection).lower() in {c.value for c in Collection}
                    else _bad_collection(str(collection)),
                    client_mutation_id=key if isinstance(key, str) else None,
                )
            )
        except ParleyError as e:
            return error_response(e)
        return JSONResponse(
            {
                "documentId": str(written.id),
                "position": written.position,
                "duplicate": written.duplicate,
            },
            status_code=200 if written.duplicate else 201,
        )

    @router.get(PATH + "/{document_id}")
    async def download(request: Request, document_id: str) -> Response:
        """The document's file as uploaded, for whoever may read the document."""
        try:
            ctx = ParleyContext(services(), api_keys())
            ctx.request = request
            await ctx.authenticate()
            await take_operation(ctx)
            wanted = parse_id(document_id, "document id")
            found = await ctx.services.run_blocking(read_file, ctx, wanted)
        except ParleyError as e:
            return error_response(e)
        title, media_type, data = found
        return Response(
            data,
            media_type=media_type,
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(title)}",
                "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return router


def read_file(ctx: ParleyContext, document_id: UUID) -> tuple[str, str, bytes]:
    """The file of a document the caller may read (as they are now): title, type, bytes."""
    caller = ctx.actor()
    store = ctx.services.aggregates
    if caller.api_key_id is not None:
        tenant, document = store.load((caller.tenant_id, True), (document_id, True))
        me = acting_service_account(caller, tenant)
    else:
        user, tenant, document = store.load(
            (caller.user_id, True), (caller.tenant_id, True), (document_id, True)
        )
        me = acting_user(caller, user, tenant)
    document = visible_document(me, document)
    data = ctx.services.blobs.get(document.id)
    if data is None:
        raise NotFound("document not found")
    return document.title, document.media_type, data


def _bad_collection(value: str) -> Collection:
    raise InvalidInput(f"collection must be personal or tenant, not {value[:40]!r}")
