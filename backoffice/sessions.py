"""Staff sessions, kept server-side in Redis; the browser only holds a random id (HttpOnly cookie).

The id comes from `secrets.token_urlsafe(32)` and Redis only sees its SHA-256, so a
copy of Redis opens no session. A session ends when idle (`NEARCART_SESSION_IDLE_S`:
each request pushes the expiry back), after `MAX_AGE_S` whatever happens, at logout,
and when its person's password changes or the person is removed (checked per request).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from backoffice.keys import OfficeKeys

# Even an active session is opened again after a working day.
MAX_AGE_S = 12 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    email: str
    # The CSRF token every state-changing form of this session carries.
    csrf: str
    lang: str
    # The person's `password_changed_at` (epoch seconds) when the session opened.
    password_at: float
    opened_at: float


class Sessions:
    def __init__(self, redis: aioredis.Redis, keys: OfficeKeys, idle_s: int) -> None:
        self.redis = redis
        self.keys = keys
        self.idle_s = idle_s

    async def open(self, email: str, password_at: float, lang: str) -> Session:
        session = Session(
            session_id=secrets.token_urlsafe(32),
            email=email,
            csrf=secrets.token_urlsafe(32),
            lang=lang,
            password_at=password_at,
            opened_at=time.time(),
        )
        key = self.keys.session(session.session_id)
        fields: dict[Any, Any] = {
            "email": email, "csrf": session.csrf, "lang": lang,
            "password_at": repr(password_at), "opened_at": repr(session.opened_at),
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self.idle_s)
            await pipe.execute()
        return session

    async def load(self, session_id: str) -> Session | None:
        """The live session with this id, its idle expiry pushed back; None when there is none."""
        if not session_id or len(session_id) > 100:
            return None
        key = self.keys.session(session_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.expire(key, self.idle_s)
            fields, _ = await pipe.execute()
        values = {k.decode(): v.decode() for k, v in fields.items()}
        if not {"email", "csrf", "lang", "password_at", "opened_at"} <= values.keys():
            return None
        session = Session(
            session_id=session_id,
            email=values["email"],
            csrf=values["csrf"],
            lang=values["lang"],
            password_at=float(values["password_at"]),
            opened_at=float(values["opened_at"]),
        )
        if time.time() - session.opened_at > MAX_AGE_S:
            await self.close(session_id)
            return None
        return session

    async def set_lang(self, session: Session, lang: str) -> None:
        await self.redis.hset(self.keys.session(session.session_id), "lang", lang)

    async def close(self, session_id: str) -> None:
        await self.redis.unlink(self.keys.session(session_id))
