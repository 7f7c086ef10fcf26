"""The back office's Redis keys, under the same configured prefix as `cache.keys.Keys`.

``P bo:s:<sha256 of the session id>``   hash: email, csrf, lang, password_at, opened_at (expires when idle)
``P bo:lf:a:<sha256 of the email>``     failed logins of one account in the current window
``P bo:lf:n:<network>``                 failed logins from one /24 (IPv6 /48) in the current window

Only digests of session ids and emails appear in key names: a key listing gives away neither.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class OfficeKeys:
    prefix: str = "nc:"

    def session(self, session_id: str) -> str:
        return f"{self.prefix}bo:s:{digest(session_id)}"

    def account_failures(self, email: str) -> str:
        return f"{self.prefix}bo:lf:a:{digest(email)}"

    def network_failures(self, network: str) -> str:
        return f"{self.prefix}bo:lf:n:{network}"
