"""The database never holds plaintext key material, plaintext, passphrases or tokens.

Known secrets are collected in-process (the loaded handles hold the material), then the
SQLite files (main, WAL) or every PostgreSQL row are scanned for them.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keykeeper.service.keys import CreateKey
from tests.conftest import PG_DSN
from tests.integration.conftest import PASSPHRASE, ROOT_TOKEN, Node

PLAINTEXT = b"plaintext that must never be stored: 4242-4242-4242-4242"


def _material_variants(handle: object) -> list[bytes]:
    key = handle._key  # type: ignore[attr-defined]
    if isinstance(key, bytes):
        return [key]
    out = [key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        n = key.private_numbers().private_value
        out.append(n.to_bytes((n.bit_length() + 7) // 8, "big"))
    if isinstance(key, rsa.RSAPrivateKey):
        d = key.private_numbers().d
        out.append(d.to_bytes((d.bit_length() + 7) // 8, "big")[:64])
    return out


def _pg_dump(schema: str) -> bytes:
    chunks: list[bytes] = []
    with psycopg.connect(PG_DSN) as conn:
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = %s",
            (schema,))]
        assert "keys" in tables and "key_versions" in tables
        for table in tables:
            for row in conn.execute(f'select * from "{schema}"."{table}"'):
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        chunks.append(bytes(value))
                    else:
                        chunks.append(str(value).encode())
    return b"\n".join(chunks)


def test_no_secret_reaches_the_database(node: Node, database_url: str,
                                        sqlite_path: Path | None) -> None:
    svc, ctx = node.services, node.ctx()
    secrets_: list[bytes] = [ROOT_TOKEN.encode(), PASSPHRASE.encode(), PLAINTEXT]
    for name, algorithm in (("aes", "AES_256_GCM"), ("chacha", "CHACHA20_POLY1305"),
                            ("hmac", "HMAC_SHA256"), ("ec", "ECDSA_P256_SHA256"),
                            ("ed", "ED25519"), ("rsa", "RSA_OAEP_3072_SHA256"),
                            ("mldsa", "ML_DSA_65")):
        key = svc.keys.create(ctx, CreateKey(name=name, algorithm=algorithm))
        svc.keys.rotate(ctx, name)
        fresh = svc.keys.get(ctx, name)
        for version in (1, 2):
            secrets_ += _material_variants(svc.lookup.handle(fresh, version))
        assert key.id
    encrypted = svc.crypto.encrypt(ctx, "aes", PLAINTEXT)
    data_key = svc.crypto.data_key(ctx, "aes")
    assert data_key.plaintext is not None
    secrets_.append(data_key.plaintext)
    assert svc.crypto.decrypt(ctx, "aes", encrypted.ciphertext)[0] == PLAINTEXT
    assert all(len(s) >= 16 for s in secrets_)

    if sqlite_path is not None:
        files = sorted(sqlite_path.parent.glob(sqlite_path.name + "*"))
        assert files and files[0] == sqlite_path
        stored = b"".join(f.read_bytes() for f in files)
    else:
        schema = database_url.rsplit("%3D", 1)[1]
        stored = _pg_dump(schema)
    assert b"key_versions" in stored or sqlite_path is None  # the scan saw real content
    assert len(stored) > 1000
    leaked = [s[:6].hex() for s in secrets_ if s in stored]
    assert leaked == [], f"{len(leaked)} secrets found in the database"


def test_audit_records_hold_no_secrets(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="audited"))
    with svc.audit.audited(ctx, "encrypt"):
        svc.crypto.encrypt(ctx, "audited", PLAINTEXT)
    with pytest.raises(Exception), svc.audit.audited(node.ctx(), "decrypt"):  # noqa: B017
        svc.crypto.decrypt(node.ctx(), "audited", "keykeeper:v1:bogus")
    text = repr(node.sink.records).encode()
    assert len(node.sink.records) == 2
    assert PLAINTEXT not in text and ROOT_TOKEN.encode() not in text
    first, second = node.sink.records
    assert (first.outcome, first.key_version) == ("success", 1)  # type: ignore[attr-defined]
    assert second.error_code == "decryption_failed"  # type: ignore[attr-defined]
