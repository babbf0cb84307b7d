"""Secrets at rest (webhook secrets): sealed with Fernet (AES-128-CBC + HMAC-SHA256, from
`cryptography`) under the keys of `PACKMATCH_SECRETS_KEY` (the current one, which seals) and
`PACKMATCH_SECRETS_OLD_KEYS` (which still open). Rotation (docs/security.md): make the new key
current, list the old one as old, run `packmatch secrets reseal`, then drop the old key. Without a
configured key a fixed, public development key is used: it protects nothing (decision 0012).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# Public on purpose: it only keeps a development database's secrets from being plain text.
DEVELOPMENT_KEY = "cGFja21hdGNoLWRldmVsb3BtZW50LWtleS1ub3Qtc2U="


class SecretUnreadable(Exception):
    """A sealed secret that none of the configured keys opens (a key was dropped too early)."""


class SecretBox:
    def __init__(self, keys: Sequence[str] = ()) -> None:
        """`keys`: the current key first, then old ones; none → the development key."""
        self.development = not keys
        self._fernet = MultiFernet([Fernet(key) for key in (keys or [DEVELOPMENT_KEY])])

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def reveal(self, sealed: str) -> str:
        """The clear secret: the one function that gives it, for signing a delivery."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken:
            raise SecretUnreadable("no configured key opens this webhook secret") from None

    def reseal(self, sealed: str) -> str:
        """The same secret sealed under the current key (for retiring an old key)."""
        try:
            return self._fernet.rotate(sealed.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretUnreadable("no configured key opens this webhook secret") from None
