"""`POST /documents`: upload a document as `multipart/form-data`, the way files are sent (the
GraphQL `uploadDocument` mutation carries base64 within the GraphQL body limit).

Fields: `file` (the document; its filename is the title), optional `collection` (`personal`,
the default, or `tenant` for admins), optional `clientMutationId`. Authenticated like GraphQL
(`Authorization: Bearer <access token>` or an API key) and charged to the same per-minute
operation budget. The answer is `{"documentId", "position", "duplicate"}` (201), or
`{"error": {"code", "message"}}` with the code GraphQL would give (`BAD_USER_INPUT` for an
unsupported or empty file, `PAYLOAD_TOO_LARGE` above PARLEY_DOCUMENT_MAX_BYTES, …). Browsers'
cross-origin requests are refused unless their origin is an allowed CORS origin.
"""

from collections.abc import Callable

from fastapi import APIRouter
from starlette.datastructures import UploadFile
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
from domain.document import Collection
from domain.errors import InvalidInput, ParleyError
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
            form = await request.form(max_files=1, max_fields=4, max_part_size=FORM_OVERHEAD)
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

    return router


def _bad_collection(value: str) -> Collection:
    raise InvalidInput(f"collection must be personal or tenant, not {value[:40]!r}")
