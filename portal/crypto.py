"""Encryption at rest: AES-256-GCM bound to the row and column it belongs to, with key rotation.

Every secret column (`EncryptedText`) is sealed with associated data naming its table, column and workspace
(`amocrm_connections.refresh_token:<workspace id>`; a workspace's own columns use its public id, known before
its row is inserted): a ciphertext copied into another workspace's row, or into another column, does not open.
The ORM seals on flush and opens on load (`_register`), so model code sees plaintext; code that reads or writes
such a column without the ORM uses `seal` / `unseal` with `column_context`.

Keys: ENCRYPTION_KEYS, the first one primary (new values) and the others still readable, as with MultiFernet; an
AES key is derived from each (HKDF-SHA256) and its id travels in the ciphertext. Values written before this
scheme (plain Fernet, not bound to a row) are still read; `flask --app wsgi keys rotate` rewrites every value that
is not sealed with the primary key, those included.
"""
import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, current_app
from sqlalchemy import Text, column, event, inspect, select, table, update
from sqlalchemy.orm import Mapper, attributes
from sqlalchemy.types import TypeDecorator

from portal.extensions import db

SEALED_PREFIX = "v2."
KEY_ID_BYTES, NONCE_BYTES = 4, 12


class _Keys:
    """The configured keys: AES-GCM keys by id (the primary's first), and the legacy Fernet reader."""

    def __init__(self, fernet_keys: list[str]) -> None:
        self.aead: dict[bytes, AESGCM] = {}
        self.primary_id = b""
        for index, key in enumerate(fernet_keys):
            derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                           info=b"leadpath at-rest aes-256-gcm").derive(base64.urlsafe_b64decode(key))
            key_id = hashlib.sha256(derived).digest()[:KEY_ID_BYTES]
            self.aead.setdefault(key_id, AESGCM(derived))
            if index == 0:
                self.primary_id = key_id
        self.fernet = MultiFernet([Fernet(key) for key in fernet_keys])


def init_app(app: Flask) -> None:
    keys = app.config["ENCRYPTION_KEYS"]
    if not keys:
        raise RuntimeError("ENCRYPTION_KEYS is empty")
    app.extensions["leadpath_keys"] = _Keys(list(keys))


def _keys() -> _Keys:
    return current_app.extensions["leadpath_keys"]


def seal(plaintext: str, context: str) -> str:
    """AES-256-GCM under the primary key, `context` as associated data (see `column_context`)."""
    keys = _keys()
    nonce = os.urandom(NONCE_BYTES)
    sealed = keys.aead[keys.primary_id].encrypt(nonce, plaintext.encode(), context.encode())
    return SEALED_PREFIX + base64.urlsafe_b64encode(keys.primary_id + nonce + sealed).decode()


def unseal(token: str, context: str) -> str:
    """The plaintext of a value sealed for `context` (or of a legacy Fernet value). RuntimeError when no
    configured key opens it for this context: a wrong key, or a value copied from another row or column."""
    keys = _keys()
    if not token.startswith(SEALED_PREFIX):
        try:
            return keys.fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise RuntimeError("A stored secret cannot be decrypted with the configured ENCRYPTION_KEYS") from exc
    try:
        raw = base64.urlsafe_b64decode(token[len(SEALED_PREFIX):].encode())
        key = keys.aead[raw[:KEY_ID_BYTES]]
        nonce, sealed = raw[KEY_ID_BYTES:KEY_ID_BYTES + NONCE_BYTES], raw[KEY_ID_BYTES + NONCE_BYTES:]
        return key.decrypt(nonce, sealed, context.encode()).decode()
    except (KeyError, InvalidTag, ValueError) as exc:
        raise RuntimeError("A stored secret cannot be decrypted with the configured ENCRYPTION_KEYS for "
                           f"{context.split(':', 1)[0]} of this workspace") from exc


def sealed_with_primary(token: str) -> bool:
    return token.startswith(SEALED_PREFIX) and base64.urlsafe_b64decode(
        token[len(SEALED_PREFIX):].encode())[:KEY_ID_BYTES] == _keys().primary_id


def column_context(table_name: str, column_name: str, owner) -> str:
    """The associated data of one secret: table, column, and the workspace (its id; its public id for the
    workspaces table itself)."""
    return f"{table_name}.{column_name}:{owner}"


def encrypt(plaintext: str) -> str:
    """Legacy Fernet, not bound to a row: only for migrations written before sealing (they still read it)."""
    return _keys().fernet.encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _keys().fernet.decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError("A stored secret cannot be decrypted with the configured ENCRYPTION_KEYS") from exc


class EncryptedText(TypeDecorator):
    """A secret column: the database holds the value sealed for its row (see the module's docstring); models
    see plaintext. The column type passes the stored text through: sealing needs the row, so the ORM events
    below do it."""

    impl = Text
    cache_ok = True


def _owner(instance):
    return instance.workspace_id if "workspace_id" in inspect(type(instance)).columns else instance.public_id


def encrypted_columns(mapper: Mapper) -> list[str]:
    return [mapped.key for mapped in mapper.columns if isinstance(mapped.type, EncryptedText)]


def _context(instance, key: str) -> str:
    return column_context(instance.__table__.name, key, _owner(instance))


def _open_loaded(instance, keys) -> None:
    for key in keys:
        token = instance.__dict__.get(key)
        if token is not None:
            attributes.set_committed_value(instance, key, unseal(token, _context(instance, key)))


def _seal_for_flush(instance, inserting: bool) -> None:
    opened = {}
    for key in encrypted_columns(inspect(type(instance))):
        value = instance.__dict__.get(key)
        if value is None or not (inserting or attributes.get_history(instance, key).has_changes()):
            continue
        opened[key] = value
        setattr(instance, key, seal(value, _context(instance, key)))
    instance.__dict__["_leadpath_opened"] = opened


def _reopen_after_flush(instance) -> None:
    for key, value in instance.__dict__.pop("_leadpath_opened", {}).items():
        attributes.set_committed_value(instance, key, value)


def register(model_base) -> None:
    """Seal and open the EncryptedText columns of every model of `model_base` (call once, at import)."""

    @event.listens_for(model_base, "load", propagate=True)
    def on_load(instance, _context_):
        _open_loaded(instance, encrypted_columns(inspect(type(instance))))

    @event.listens_for(model_base, "refresh", propagate=True)
    def on_refresh(instance, _context_, keys):
        names = encrypted_columns(inspect(type(instance)))
        _open_loaded(instance, [key for key in names if keys is None or key in keys])

    @event.listens_for(model_base, "before_insert", propagate=True)
    def before_insert(_mapper, _connection, instance):
        _seal_for_flush(instance, inserting=True)

    @event.listens_for(model_base, "before_update", propagate=True)
    def before_update(_mapper, _connection, instance):
        _seal_for_flush(instance, inserting=False)

    @event.listens_for(model_base, "after_insert", propagate=True)
    def after_insert(_mapper, _connection, instance):
        _reopen_after_flush(instance)

    @event.listens_for(model_base, "after_update", propagate=True)
    def after_update(_mapper, _connection, instance):
        _reopen_after_flush(instance)


def reencrypt_all(session) -> dict[str, int]:
    """Re-seal every EncryptedText value not sealed with the primary key (older keys, legacy Fernet values), in
    the caller's transaction. Returns {"table.column": rewritten}. Raises RuntimeError (and changes nothing, once
    the caller rolls back) if a value opens with none of the keys for its row."""
    rewritten = {}
    for model_table in db.metadata.sorted_tables:
        names = [col.name for col in model_table.columns if isinstance(col.type, EncryptedText)]
        owner = "workspace_id" if "workspace_id" in model_table.columns else "public_id"
        for name in names:
            raw = table(model_table.name, column("id"), column(owner), column(name))
            count = 0
            rows = session.execute(select(raw.c.id, raw.c[owner], raw.c[name]).where(raw.c[name].is_not(None)))
            for row_id, owner_value, token in rows.all():
                if sealed_with_primary(token):
                    continue
                context = column_context(model_table.name, name, owner_value)
                try:
                    plaintext = unseal(token, context)
                except RuntimeError as exc:
                    raise RuntimeError(f"{model_table.name}.{name} id={row_id} cannot be decrypted with any "
                                       "configured key") from exc
                session.execute(update(raw).where(raw.c.id == row_id).values({name: seal(plaintext, context)}))
                count += 1
            rewritten[f"{model_table.name}.{name}"] = count
    return rewritten
