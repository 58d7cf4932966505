"""Encryption at rest (Fernet, with MultiFernet for key rotation) and the column type that applies it."""
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app
from sqlalchemy import Text, column, select, table, update
from sqlalchemy.types import TypeDecorator

from portal.extensions import db


def init_app(app: Flask) -> None:
    keys = app.config["ENCRYPTION_KEYS"]
    if not keys:
        raise RuntimeError("ENCRYPTION_KEYS is empty")
    app.extensions["leadpath_cipher"] = MultiFernet([Fernet(key) for key in keys])


def cipher() -> MultiFernet:
    return current_app.extensions["leadpath_cipher"]


def encrypt(plaintext: str) -> str:
    return cipher().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return cipher().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError("A stored secret cannot be decrypted with the configured ENCRYPTION_KEYS") from exc


class EncryptedText(TypeDecorator):
    """A string stored encrypted; Python code sees plaintext."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else encrypt(value)

    def process_result_value(self, value, dialect):
        return None if value is None else decrypt(value)


def reencrypt_all(session) -> dict[str, int]:
    """Re-encrypt every EncryptedText value with the primary (first) key, in the caller's transaction.

    Values already readable with the primary key alone are left as they are. Returns {"table.column": rewritten}.
    Raises RuntimeError (and changes nothing, once the caller rolls back) if a value fits none of the keys.
    """
    primary = Fernet(current_app.config["ENCRYPTION_KEYS"][0])
    rewritten = {}
    for model_table in db.metadata.sorted_tables:
        names = [col.name for col in model_table.columns if isinstance(col.type, EncryptedText)]
        for name in names:
            # A lightweight table clause reads the raw ciphertext (the model's column type would decrypt it).
            raw = table(model_table.name, column("id"), column(name))
            count = 0
            for row_id, token in session.execute(select(raw.c.id, raw.c[name]).where(raw.c[name].is_not(None))):
                try:
                    primary.decrypt(token.encode())
                    continue
                except InvalidToken:
                    pass
                try:
                    fresh = cipher().rotate(token.encode()).decode()
                except InvalidToken as exc:
                    raise RuntimeError(f"{model_table.name}.{name} id={row_id} cannot be decrypted with any "
                                       "configured key") from exc
                session.execute(update(raw).where(raw.c.id == row_id).values({name: fresh}))
                count += 1
            rewritten[f"{model_table.name}.{name}"] = count
    return rewritten
