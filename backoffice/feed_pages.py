"""`/admin/retailers/{id}/feeds`: upload a feed from the browser, read its report, download it as CSV, see past runs.

The form posts `multipart/form-data` (the file, its kind, the CSRF token) and works without
JavaScript; admin.js adds an upload progress bar. The body is read through a cap
(`NEARCART_FEED_UPLOAD_MAX_BYTES`, 413 beyond) and spooled to disk, then loaded as
`backoffice.feed_uploads` does for the API: the answer is a redirect to the upload's report,
which refreshes itself while a large file is still loading in the background.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message

from backoffice.feed_uploads import (
    UPLOAD_KINDS,
    Upload,
    UploadTooLarge,
    find_upload,
    load_upload,
    recent_uploads,
    spool,
)
from backoffice.i18n import translator
from backoffice.retailer_pages import may_see_retailer
from backoffice.web import (
    OUTAGES,
    SECURITY_HEADERS,
    Form,
    Staff,
    csrf_matches,
    current_staff,
    message_page,
    not_found,
    outage_page,
    page,
    redirect,
    render,
)
from edge_api.body_limits import FEED_FORM_SLACK as FORM_SLACK
from edge_api.state import edge_state

READ_CHUNK = 256 * 1024
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


async def _retailer_in_scope(request: Request, staff: Staff) -> str | None:
    retailer_id: str = request.path_params["retailer_id"]
    if not may_see_retailer(staff, retailer_id):
        return None
    if not await edge_state(request).db.fetchval("SELECT 1 FROM retailers WHERE retailer_id = $1", retailer_id):
        return None
    return retailer_id


async def _feeds_page(request: Request, staff: Staff, retailer_id: str, error: str = "", status: int = 200) -> Response:
    pool = edge_state(request).db
    runs = await pool.fetch(
        "SELECT r.id, r.kind, r.started_at, r.finished_at, r.rows_read, r.rows_loaded, r.rows_rejected, r.status,"
        " u.id AS upload_id FROM feed_runs r LEFT JOIN feed_uploads u ON u.run_id = r.id"
        " WHERE r.retailer_id = $1 ORDER BY r.id DESC LIMIT 50",
        retailer_id,
    )
    running = [u for u in await recent_uploads(pool, retailer_id, 20) if u.status == "running"]
    context: dict[str, Any] = {
        "retailer_id": retailer_id, "runs": [dict(r) for r in runs], "running": running, "kinds": UPLOAD_KINDS,
        "error": error, "max_mb": edge_state(request).settings.feed_upload_max_bytes // (1024 * 1024),
    }
    return render("feeds.html", staff.lang, context, status=status, staff=staff)


async def feeds(request: Request, staff: Staff, form: Form) -> Response:
    retailer_id = await _retailer_in_scope(request, staff)
    if retailer_id is None:
        return not_found(request, staff)
    return await _feeds_page(request, staff, retailer_id)


class _CappedBody:
    """The request's body messages, refused past `cap` bytes whatever Content-Length said."""

    def __init__(self, request: Request, cap: int) -> None:
        self.request, self.cap, self.received = request, cap, 0

    async def __call__(self) -> Message:
        message = await self.request.receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.cap:
                raise UploadTooLarge
        return message


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(READ_CHUNK):
        yield chunk


async def upload_feed(request: Request) -> Response:
    try:
        staff = await current_staff(request)
        if staff is None:
            return redirect("/admin/login")
        retailer_id = await _retailer_in_scope(request, staff)
        if retailer_id is None:
            return not_found(request, staff)
        return await _receive(request, staff, retailer_id)
    except OUTAGES:
        return outage_page(request)


async def _receive(request: Request, staff: Staff, retailer_id: str) -> Response:
    _ = translator(staff.lang)
    settings = edge_state(request).settings
    cap = settings.feed_upload_max_bytes + FORM_SLACK
    too_large = _("The file is larger than {mb} MB: gzip it or split it.", mb=settings.feed_upload_max_bytes >> 20)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        return message_page(request, staff.lang, 413, _("File too large"), too_large, staff)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "multipart/form-data":
        return message_page(request, staff.lang, 415, _("Not a file upload"),
                            _("Send the feed with the form on the feeds page."), staff)
    try:
        form = await Request(request.scope, _CappedBody(request, cap)).form(max_files=1, max_fields=10)
    except UploadTooLarge:
        return message_page(request, staff.lang, 413, _("File too large"), too_large, staff)
    except MultiPartException as exc:
        return message_page(request, staff.lang, 400, _("Not a file upload"), str(exc), staff)
    try:
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        if not csrf_matches(fields, staff.session.csrf):
            return message_page(request, staff.lang, 403, _("Forbidden"),
                                _("This form has expired. Please try again."), staff)
        kind, file = form.get("kind"), form.get("file")
        if kind not in UPLOAD_KINDS:
            return await _feeds_page(request, staff, retailer_id, _("Choose what the file holds."), 422)
        if not isinstance(file, UploadFile) or not file.filename:
            return await _feeds_page(request, staff, retailer_id, _("Choose a file to send."), 422)
        try:
            spooled = await spool(_chunks(file), settings, file.filename)
        except UploadTooLarge:
            return message_page(request, staff.lang, 413, _("File too large"), too_large, staff)
    finally:
        await form.close()
    upload = await load_upload(settings, edge_state(request).db, retailer_id, str(kind), staff.user.email, spooled)
    return redirect(f"/admin/retailers/{retailer_id}/feeds/{upload.id}")


async def _upload_of(request: Request, staff: Staff) -> Upload | None:
    retailer_id = await _retailer_in_scope(request, staff)
    raw: str = request.path_params["upload_id"]
    if retailer_id is None or not raw.isdigit() or len(raw) > 18:
        return None
    return await find_upload(edge_state(request).db, retailer_id, int(raw))


async def report(request: Request, staff: Staff, form: Form) -> Response:
    upload = await _upload_of(request, staff)
    if upload is None:
        return not_found(request, staff)
    return render("feed_report.html", staff.lang, {"upload": upload}, staff=staff)


def _cell(value: object) -> str:
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


async def report_csv(request: Request, staff: Staff, form: Form) -> Response:
    upload = await _upload_of(request, staff)
    if upload is None or upload.report is None:
        return not_found(request, staff)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["file", "line", "field", "reason"])
    if upload.report.fatal:
        writer.writerow([_cell(upload.report.files[0]), 0, "file", _cell(upload.report.fatal)])
    for reject in upload.report.rejects:
        writer.writerow([_cell(reject.file), reject.line, _cell(reject.field), _cell(reject.reason)])
    name = f"{upload.retailer_id}-{upload.kind}-{upload.id}-report.csv"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
    # A BOM so that Excel reads the reasons' accents as UTF-8.
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


routes: list[BaseRoute] = [
    Route("/admin/retailers/{retailer_id}/feeds", page(feeds), methods=["GET"], name="office_feeds"),
    Route("/admin/retailers/{retailer_id}/feeds", upload_feed, methods=["POST"], name="office_upload_feed"),
    Route("/admin/retailers/{retailer_id}/feeds/{upload_id}", page(report), methods=["GET"], name="office_feed_report"),
    Route("/admin/retailers/{retailer_id}/feeds/{upload_id}/report.csv", page(report_csv), methods=["GET"],
          name="office_feed_report_csv"),
]
