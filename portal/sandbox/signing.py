"""The sandbox's RS256 token-signing key: amoCRM's access tokens are RS256 JWTs (AMOCRM.md: OAuth)."""

import base64
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class TokenSigner:
    """The sandbox's RSA key pair; the public half is published at ``/_sandbox/jwks`` and in the state."""

    def __init__(self):
        self.use_key(rsa.generate_private_key(public_exponent=65537, key_size=2048), uuid.uuid4().hex)

    def use_key(self, private_key, kid: str) -> None:
        self.private_key = private_key
        self.kid = kid
        self.public_pem = (
            private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    @property
    def private_pem(self) -> dict:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {"pem": pem, "kid": self.kid}

    def load_pem(self, saved: dict) -> None:
        self.use_key(serialization.load_pem_private_key(saved["pem"].encode(), password=None), saved["kid"])

    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})

    def verify(self, token: str) -> dict:
        """Raises ``jwt.InvalidTokenError`` when the signature is bad or ``exp``/``nbf`` says no."""
        return jwt.decode(
            token, self.private_key.public_key(), algorithms=["RS256"], options={"verify_aud": False}
        )

    def jwks(self) -> dict:
        numbers = self.private_key.public_key().public_numbers()

        def b64(number: int) -> str:
            raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return {
            "keys": [
                {
                    "kty": "RSA",
                    "alg": "RS256",
                    "use": "sig",
                    "kid": self.kid,
                    "n": b64(numbers.n),
                    "e": b64(numbers.e),
                }
            ]
        }
