"""`/admin/login` and `/admin/logout`: open and close a staff session.

The login form carries a CSRF token too, though no session exists yet: the token is
an HMAC of a random value the form's own cookie holds, so only the page we served
can post it (and a third-party site cannot log a browser into its own account).
Every failed login — unknown email, wrong password, too many attempts — answers
the same page no sooner than `FAILURE_FLOOR_S` after it arrived: the answer's
wording and timing say nothing about which emails have an account.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from backoffice.i18n import LANGS, translator
from backoffice.state import office_state
from backoffice.users import check_login
from backoffice.web import (
    OUTAGES,
    SESSION_COOKIE,
    Form,
    FormError,
    Staff,
    csrf_matches,
    current_staff,
    delete_cookie,
    message_page,
    outage_page,
    page,
    read_form,
    redirect,
    render,
    request_lang,
    sessions_of,
    set_cookie,
    signed_in,
)
from edge_api.client_ip import client_ip
from edge_api.state import edge_state
from geo.privacy import truncate_ip

LOGIN_COOKIE = "nc_admin_login"
LOGIN_FORM_TTL_S = 3600
FAILURE_FLOOR_S = 0.5


def _login_csrf(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), f"admin-login:{nonce}".encode(), hashlib.sha256).hexdigest()


def _login_form(
    request: Request, lang: str, chosen: str, status: int = 200, error: str = "", email: str = ""
) -> Response:
    """The form; `chosen` is the language picked with the switch ("" if none), carried to the session."""
    # The browser's form cookie is kept while it lasts: a form open in another tab stays usable.
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not 40 <= len(nonce) <= 64:
        nonce = secrets.token_urlsafe(32)
    csrf = _login_csrf(edge_state(request).settings.secret, nonce)
    context = {"csrf": csrf, "error": error, "email": email, "chosen_lang": chosen}
    response = render("login.html", lang, context, status=status)
    set_cookie(request, response, LOGIN_COOKIE, nonce, max_age=LOGIN_FORM_TTL_S)
    return response


async def login_form(request: Request) -> Response:
    try:
        if await current_staff(request) is not None:
            return redirect("/admin/")
    except OUTAGES:
        return outage_page(request)
    asked = request.query_params.get("lang", "")
    return _login_form(request, request_lang(request), asked if asked in LANGS else "")


async def login(request: Request) -> Response:
    started = time.monotonic()
    try:
        form = await read_form(request)
    except FormError as exc:
        return message_page(request, request_lang(request), exc.status, str(exc), str(exc))
    chosen = form.get("lang", "") if form.get("lang") in LANGS else ""
    lang = chosen or request_lang(request)
    _ = translator(lang)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not csrf_matches(form, _login_csrf(edge_state(request).settings.secret, nonce)):
        return _login_form(request, lang, chosen, status=403, error=_("This form has expired. Please try again."))
    email, password = form.get("email", "").strip().lower()[:254], form.get("password", "")
    state = edge_state(request)
    throttle = office_state(request).throttle
    network = truncate_ip(client_ip(request, state.settings.trusted_proxies))
    try:
        wait_s = await throttle.wait_s(email, network)
        user = None if wait_s else await check_login(state.db, email, password)
        if user is None:
            if not wait_s:
                await throttle.failed(email, network)
            await asyncio.sleep(max(0.0, FAILURE_FLOOR_S - (time.monotonic() - started)))
            if wait_s:
                message = _("Too many failed attempts. Try again in {minutes} min.", minutes=math.ceil(wait_s / 60))
                response = _login_form(request, lang, chosen, status=429, error=message, email=email)
                response.headers["Retry-After"] = str(wait_s)
                return response
            return _login_form(request, lang, chosen, status=403, error=_("Wrong email or password."), email=email)
        await throttle.succeeded(email)
        response = await signed_in(request, user, chosen, "/admin/")
    except OUTAGES:
        return outage_page(request)
    delete_cookie(request, response, LOGIN_COOKIE)
    return response


async def logout_form(request: Request, staff: Staff, form: Form) -> Response:
    return render("logout.html", staff.lang, {}, staff=staff)


async def logout(request: Request, staff: Staff, form: Form) -> Response:
    await sessions_of(request).close(staff.session.session_id)
    response = redirect(f"/admin/login?lang={staff.lang}")
    delete_cookie(request, response, SESSION_COOKIE)
    return response


routes: list[BaseRoute] = [
    Route("/admin/login", login_form, methods=["GET"], name="office_login_form"),
    Route("/admin/login", login, methods=["POST"], name="office_login"),
    Route("/admin/logout", page(logout_form), methods=["GET"], name="office_logout_form"),
    Route("/admin/logout", page(logout), methods=["POST"], name="office_logout"),
]
