"""What every back-office page shares: templates, cookies, the staff member behind a request, forms and CSRF.

A page handler is wrapped by `page()`: it runs only for a live session (else the
browser is sent to the login form), its POST forms are read and their CSRF token
checked first (403 and nothing changed when missing or stale), and a Redis or
PostgreSQL outage becomes a 503 page, never a 500.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader, StrictUndefined
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from backoffice.i18n import LANGS, pick_lang, translator
from backoffice.roles import RoleError, parse_role, role_name
from backoffice.sessions import Session, Sessions
from backoffice.state import office_state
from backoffice.users import User, find_user
from cache.db import DATABASE_UNAVAILABLE
from edge_api.auth import Principal
from edge_api.events import BodyTooLarge, read_capped
from edge_api.state import edge_state

SESSION_COOKIE = "nc_admin"
COOKIE_PATH = "/admin"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
FORM_LIMIT = 16 * 1024
OUTAGES = (*DATABASE_UNAVAILABLE, RedisError)
# Private pages: never cached, never framed, no inline script, forms only posted back here.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

templates = Environment(
    loader=PackageLoader("backoffice", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class Staff:
    """The person behind a request, with their live session and the language they read."""

    user: User
    who: Principal
    session: Session
    lang: str

    @property
    def role(self) -> str:
        return role_name(self.who)


Form = Mapping[str, str]
PageHandler = Callable[[Request, Staff, Form], Awaitable[Response]]


def sessions_of(request: Request) -> Sessions:
    return office_state(request).sessions


def cookie_is_secure(request: Request) -> bool:
    """Secure everywhere but on loopback, where a developer serves plain http."""
    return (request.url.hostname or "") not in LOOPBACK_HOSTS


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=COOKIE_PATH, secure=cookie_is_secure(request), httponly=True,
        samesite="strict",
    )


def delete_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, secure=cookie_is_secure(request), httponly=True, samesite="strict"
    )


def render(
    name: str, lang: str, context: Mapping[str, Any], status: int = 200, staff: Staff | None = None
) -> HTMLResponse:
    page = templates.get_template(name).render(
        {"_": translator(lang), "lang": lang, "langs": LANGS, "staff": staff, **context}
    )
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


async def signed_in(request: Request, user: User, lang: str, to: str) -> RedirectResponse:
    """Open a session for `user` and send the browser to `to` holding its cookie.

    `lang` is the language the session remembers: only one chosen with the switch, "" for none.
    """
    session = await sessions_of(request).open(user.email, user.password_changed_at.timestamp(), lang)
    response = redirect(to)
    set_cookie(request, response, SESSION_COOKIE, session.session_id)
    return response


def request_lang(request: Request, remembered: str | None = None) -> str:
    return pick_lang(request.query_params.get("lang"), remembered, request.headers.get("accept-language", ""))


def message_page(request: Request, lang: str, status: int, title: str, detail: str,
                 staff: Staff | None = None) -> HTMLResponse:
    return render("message.html", lang, {"title": title, "detail": detail}, status=status, staff=staff)


def not_found(request: Request, staff: Staff) -> HTMLResponse:
    """The same answer for what does not exist and what this role may not see: no hint either way."""
    _ = translator(staff.lang)
    return message_page(
        request, staff.lang, 404, _("Not found"), _("There is nothing here, or nothing you may see."), staff
    )


class FormError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_form(request: Request, limit: int = FORM_LIMIT) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (what every form here posts), last value of each field."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormError(415, "forms are posted as application/x-www-form-urlencoded")
    try:
        body = await read_capped(request, limit)
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50, strict_parsing=False))
    except BodyTooLarge as exc:
        raise FormError(413, f"form larger than {limit} bytes") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError(400, "the form is not valid UTF-8 form data") from exc


def csrf_matches(form: Form, expected: str) -> bool:
    return hmac.compare_digest(form.get("csrf", "").encode(), expected.encode())


def _granted(user: User | None, session: Session) -> Principal | None:
    """What the session's person may do now; None once removed, after a password change, or for an unknown role."""
    if user is None or user.password_changed_at.timestamp() != session.password_at:
        return None
    try:
        return parse_role(user.role)
    except RoleError:
        # A role edited by hand into something nearcart does not know grants nothing.
        return None


async def current_staff(request: Request) -> Staff | None:
    """The staff member of this request's session cookie; None (and the session closed) when it no longer holds."""
    sessions = sessions_of(request)
    session = await sessions.load(request.cookies.get(SESSION_COOKIE, ""))
    if session is None:
        return None
    user = await find_user(edge_state(request).db, session.email)
    who = _granted(user, session)
    if user is None or who is None:
        await sessions.close(session.session_id)
        return None
    lang = request_lang(request, session.lang)
    # Only a choice made with the switch is remembered; otherwise the browser's language keeps applying.
    if lang != session.lang and request.query_params.get("lang") in LANGS:
        await sessions.set_lang(session, lang)
    return Staff(user=user, who=Principal(who.role, who.subject, user.email), session=session, lang=lang)


def admins_only(handler: PageHandler) -> PageHandler:
    """A page for admins; anyone else gets the same 404 as for what does not exist."""

    @functools.wraps(handler)
    async def guarded(request: Request, staff: Staff, form: Form) -> Response:
        if staff.who.role != "admin":
            return not_found(request, staff)
        return await handler(request, staff, form)

    return guarded


def outage_page(request: Request) -> HTMLResponse:
    lang = request_lang(request)
    _ = translator(lang)
    response = message_page(
        request, lang, 503, _("Service unavailable"),
        _("The back office cannot reach its database right now. Please retry shortly."),
    )
    response.headers["Retry-After"] = "5"
    return response


def page(handler: PageHandler, form_limit: int = FORM_LIMIT) -> Callable[[Request], Awaitable[Response]]:
    """A staff-only page: login first, CSRF-checked forms, outages as a 503 page."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            staff = await current_staff(request)
            if staff is None:
                return redirect("/admin/login")
            form: dict[str, str] = {}
            if request.method == "POST":
                try:
                    form = await read_form(request, form_limit)
                except FormError as exc:
                    return message_page(request, staff.lang, exc.status, str(exc), str(exc), staff)
                if not csrf_matches(form, staff.session.csrf):
                    _ = translator(staff.lang)
                    return message_page(
                        request, staff.lang, 403, _("Forbidden"), _("This form has expired. Please try again."), staff
                    )
            return await handler(request, staff, form)
        except OUTAGES:
            return outage_page(request)

    return endpoint
