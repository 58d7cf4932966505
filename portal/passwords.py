"""Passwords: how they are hashed and which ones are refused.

Hashing is Argon2id with OWASP's minimum parameters (19 MiB of memory, 2 iterations, 1 lane: the Password Storage
Cheat Sheet). Hashes made before Argon2 (Werkzeug's `scrypt:` format) still verify; `needs_rehash` tells the login
to store a fresh Argon2id hash while it holds the plain password.

The rules follow OWASP ASVS 4.0 §2.1: at least 8 characters, long passphrases allowed (up to 128), no composition
rules, and a refusal of passwords found in a bundled list of common and breached passwords (never fetched at run
time).
"""
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _
from werkzeug.security import check_password_hash

MIN_LENGTH = 8
MAX_LENGTH = 128
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common-passwords.txt")

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)
ARGON2_PREFIX = "$argon2id$"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True when `password` matches the stored hash (Argon2id, or a Werkzeug hash from before)."""
    if stored_hash.startswith(ARGON2_PREFIX):
        try:
            return _hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False
    return check_password_hash(stored_hash, password)


def needs_rehash(stored_hash: str) -> bool:
    """A hash of an older scheme or weaker parameters: replace it at the next successful login."""
    return not stored_hash.startswith(ARGON2_PREFIX) or _hasher.check_needs_rehash(stored_hash)


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


class WeakPassword(ValueError):
    """Why a new password is refused (the message is shown to the user, in the language of the request that
    raised it)."""


def check_new_password(password: str, email: str = "") -> None:
    """Raise WeakPassword when `password` breaks the rules above, or is the account's e-mail or its local part."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise WeakPassword(_("Use at least %(min)s and at most %(max)s characters.", min=MIN_LENGTH, max=MAX_LENGTH))
    folded = password.strip().lower()
    email = email.strip().lower()
    if folded in common_passwords() or (email and folded in {email, email.split("@")[0]}):
        raise WeakPassword(_("This password is too common: it is in lists attackers try first. Choose another one; "
                             "a phrase of several words is easy to remember."))
