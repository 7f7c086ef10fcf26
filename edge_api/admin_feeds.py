"""`PUT /admin/v1/retailers/{id}/feeds/{kind}`: a retailer's feed upload, and the uploads to poll afterwards.

Who may: an admin, or that retailer, by token (`Authorization: Bearer`) or by its back-office
session (then the session's CSRF token in `X-CSRF-Token`, as a form would carry it). Another
retailer's id answers the 404 an unknown one gets. The body is the feed file (gzip
accepted, by `Content-Encoding: gzip` or simply gzipped), streamed to disk up to
`NEARCART_FEED_UPLOAD_MAX_BYTES` (413 beyond). A small file is loaded before the answer:
200 with the report `nearcart ingest` prints (422 when the file cannot be used at all); a
larger one answers 202 at once with the upload's id and where to poll.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from backoffice.feed_uploads import (
    UPLOAD_KINDS,
    Spooled,
    Upload,
    UploadTooLarge,
    discard,
    find_upload,
    load_upload,
    recent_uploads,
    spool,
)
from backoffice.invites import RETAILER_ID
from backoffice.web import OUTAGES, SESSION_COOKIE, current_staff
from cache.ingest_report import IngestReport
from edge_api.admin import NO_STORE, guarded
from edge_api.auth import Principal
from edge_api.errors import bad_parameter, error_response
from edge_api.state import edge_state

GZIP_MAGIC = b"\x1f\x8b"
_encoder = msgspec.json.Encoder()
Handler = Callable[[Request, Principal], Awaitable[Response]]


class UploadAnswer(msgspec.Struct, kw_only=True):
    upload_id: int
    retailer_id: str
    kind: str
    # running, then ok, rejected rows or failed
    status: str
    bytes: int
    received_at: datetime
    finished_at: datetime | None
    # Where to read this answer again (poll it while `status` is running), and the page people read.
    poll: str
    page: str
    # What `nearcart ingest` would exit with (0, 3 some rows rejected, 2 unusable file); null while running.
    exit_code: int | None
    report: IngestReport | None


class UploadList(msgspec.Struct, kw_only=True):
    retailer_id: str
    uploads: list[UploadAnswer]


def answer_of(upload: Upload) -> UploadAnswer:
    base = f"/retailers/{upload.retailer_id}"
    return UploadAnswer(
        upload_id=upload.id, retailer_id=upload.retailer_id, kind=upload.kind, status=upload.status,
        bytes=upload.bytes, received_at=upload.received_at, finished_at=upload.finished_at,
        poll=f"/admin/v1{base}/uploads/{upload.id}", page=f"/admin{base}/feeds/{upload.id}",
        exit_code=upload.report.exit_code if upload.report else None, report=upload.report,
    )


def _json(value: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(value), status_code=status, media_type="application/json",
                    headers={**NO_STORE, **(headers or {})})


def token_or_session(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A bearer token as every /admin/v1 route takes it; without one, a back-office session and its CSRF header."""
    by_token = guarded(handler)

    async def endpoint(request: Request) -> Response:
        if "authorization" in request.headers or SESSION_COOKIE not in request.cookies:
            return await by_token(request)
        try:
            staff = await current_staff(request)
            if staff is None:
                return error_response(401, "your session has ended: sign in again", parameter="Cookie",
                                      headers=NO_STORE)
            sent = request.headers.get("x-csrf-token", "")
            if request.method != "GET" and not hmac.compare_digest(sent.encode(), staff.session.csrf.encode()):
                return error_response(403, "a session's upload carries its CSRF token in X-CSRF-Token",
                                      parameter="X-CSRF-Token", headers=NO_STORE)
            return await handler(request, staff.who)
        except OUTAGES:
            return error_response(503, "the catalog is unavailable, retry shortly", headers={"Retry-After": "5"})

    return endpoint


async def own_retailer(request: Request, who: Principal) -> str | Response:
    """The path's retailer when the caller may write its feeds; else the 404 an unknown retailer gets."""
    retailer_id: str = request.path_params["retailer_id"]
    allowed = who.role == "admin" or who.is_retailer(retailer_id)
    if allowed and RETAILER_ID.fullmatch(retailer_id):
        pool = edge_state(request).db
        if await pool.fetchval("SELECT 1 FROM retailers WHERE retailer_id = $1", retailer_id):
            return retailer_id
    return error_response(404, f"no retailer {retailer_id!r}", parameter="retailer_id", headers=NO_STORE)


async def put_feed(request: Request, who: Principal) -> Response:
    retailer_id = await own_retailer(request, who)
    if isinstance(retailer_id, Response):
        return retailer_id
    kind: str = request.path_params["kind"]
    if kind not in UPLOAD_KINDS:
        return bad_parameter("kind", f"{kind!r} is not a feed kind a retailer sends: {', '.join(UPLOAD_KINDS)}")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        return error_response(415, f"Content-Encoding {encoding!r}: send the feed as is or gzipped",
                              parameter="Content-Encoding")
    state = edge_state(request)
    cap = state.settings.feed_upload_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        return _too_large(cap)
    head = bytearray()

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            if len(head) < 2:
                head.extend(chunk[:2])
            yield chunk

    try:
        file = await spool(body(), state.settings, f"{kind} feed")
    except UploadTooLarge:
        return _too_large(cap)
    if encoding != "identity" and not head.startswith(GZIP_MAGIC):
        await discard(file)
        return error_response(400, "Content-Encoding says gzip, but the body is not gzip data",
                              parameter="Content-Encoding")
    return await _ingest(request, who, retailer_id, kind, file)


def _too_large(cap: int) -> Response:
    return error_response(413, f"a feed upload is at most {cap} bytes (as sent); split it or gzip it",
                          parameter="body", headers=NO_STORE)


async def _ingest(request: Request, who: Principal, retailer_id: str, kind: str, file: Spooled) -> Response:
    state = edge_state(request)
    author = who.user or (f"{who.role}:{who.subject}" if who.subject else who.role)
    upload = await load_upload(state.settings, state.db, retailer_id, kind, author, file)
    answer = answer_of(upload)
    if upload.status == "running":
        return _json(answer, status=202, headers={"Location": answer.poll})
    return _json(answer, status=422 if upload.report and upload.report.fatal else 200)


async def get_upload(request: Request, who: Principal) -> Response:
    retailer_id = await own_retailer(request, who)
    if isinstance(retailer_id, Response):
        return retailer_id
    raw: str = request.path_params["upload_id"]
    found = raw.isdigit() and len(raw) < 19
    upload = await find_upload(edge_state(request).db, retailer_id, int(raw)) if found else None
    if upload is None:
        return error_response(404, f"no upload {raw!r} of retailer {retailer_id!r}", parameter="upload_id",
                              headers=NO_STORE)
    return _json(answer_of(upload))


async def list_uploads(request: Request, who: Principal) -> Response:
    retailer_id = await own_retailer(request, who)
    if isinstance(retailer_id, Response):
        return retailer_id
    uploads = await recent_uploads(edge_state(request).db, retailer_id)
    return _json(UploadList(retailer_id=retailer_id, uploads=[answer_of(u) for u in uploads]))


routes: list[BaseRoute] = [
    Route("/admin/v1/retailers/{retailer_id}/feeds/{kind}", token_or_session(put_feed), methods=["PUT"],
          name="admin_put_feed"),
    Route("/admin/v1/retailers/{retailer_id}/uploads", token_or_session(list_uploads), methods=["GET"],
          name="admin_uploads"),
    Route("/admin/v1/retailers/{retailer_id}/uploads/{upload_id}", token_or_session(get_upload), methods=["GET"],
          name="admin_upload"),
]
