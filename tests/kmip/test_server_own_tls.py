"""The KMIP listener's own certificate settings (``KEYKEEPER_KMIP_TLS_CERT_FILE``,
``_KEY_FILE``, ``_CLIENT_CA_FILE``; docs/kmip.md): KMIP over mutual TLS beside a REST
listener on plain HTTP (as ``make run`` serves it), and how each setting falls back to the
REST listener's. One real server of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keykeeper.errors import InvalidArgument
from keykeeper.kmip.messages import batch_item, parse_response, request_message
from keykeeper.kmip.server import kmip_tls_context, kmip_tls_from_env
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    ObjectType,
    Operation,
)
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.tls import TlsSettings
from tests.kmip.conftest import NAMESPACE, KmipServer, _setup_rest
from tests.support.server import ServerProcess, free_port
from tests.tls.conftest import Pki

CERT, KEY, CA = ("KEYKEEPER_KMIP_TLS_CERT_FILE", "KEYKEEPER_KMIP_TLS_KEY_FILE",
                 "KEYKEEPER_KMIP_TLS_CLIENT_CA_FILE")


@pytest.fixture(scope="module")
def plain_rest(kmip_pki: Pki, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[tuple[ServerProcess, KmipServer]]:
    """REST on plain HTTP (no KEYKEEPER_TLS_*), KMIP with its own certificate."""
    data_dir = tmp_path_factory.mktemp("kmip-own-tls")
    kmip_port = free_port()
    server = ServerProcess(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'kk.db'}",
                           env={"KEYKEEPER_KMIP_LISTEN": f"127.0.0.1:{kmip_port}",
                                CERT: str(kmip_pki.server), KEY: str(kmip_pki.server_key),
                                CA: str(kmip_pki.ca), "KEYKEEPER_KMIP_NAMESPACE": NAMESPACE,
                                "KEYKEEPER_SCHEDULER": "off"})
    server.start()
    kmip: KmipServer | None = None
    try:
        server.init_and_unseal()
        _setup_rest(server)  # type: ignore[arg-type]  # uses only post/get/request
        rest = httpx.Client(base_url=server.addr, timeout=30.0,
                            headers={"Authorization": f"Bearer {server.root_token}"})
        kmip = KmipServer(host="127.0.0.1", port=kmip_port, ca=kmip_pki.ca,
                          client_cert=kmip_pki.client, client_key=kmip_pki.client_key,
                          unmapped_cert=kmip_pki.client, unmapped_key=kmip_pki.client_key,
                          token=server.root_token, rest_url=server.addr, rest=rest,
                          data_dir=data_dir)
        yield server, kmip
    finally:
        if kmip is not None:
            kmip.close()
            kmip.rest.close()
        server.stop()


def test_kmip_beside_plain_http(plain_rest: tuple[ServerProcess, KmipServer]) -> None:
    server, kmip = plain_rest
    assert server.addr.startswith("http://")
    assert server.get("/v1/sys/health").status_code == 200
    create = batch_item(Operation.CREATE, [
        Item(Tag.OBJECT_TYPE, ItemType.ENUMERATION, int(ObjectType.SYMMETRIC_KEY)),
        Item.structure(Tag.ATTRIBUTES, [
            Item(Tag.CRYPTOGRAPHIC_ALGORITHM, ItemType.ENUMERATION,
                 int(CryptographicAlgorithm.AES)),
            Item(Tag.CRYPTOGRAPHIC_LENGTH, ItemType.INTEGER, 256),
            Item(Tag.CRYPTOGRAPHIC_USAGE_MASK, ItemType.INTEGER,
                 int(CryptographicUsageMask.ENCRYPT | CryptographicUsageMask.DECRYPT))])])
    answer = parse_response(kmip.call(request_message([create])))
    item = answer.items[0]
    assert item.ok and item.payload is not None, (item.reason, item.message)
    uid = item.payload.find(int(Tag.UNIQUE_IDENTIFIER))
    assert uid is not None
    key_id = str(uid.value).split("/")[0]
    # The KMIP-created key is the REST key of the same id, served over plain HTTP.
    r = server.get(f"/v1/keys/{key_id}")
    assert r.status_code == 200, r.text
    assert r.json()["namespace"] == NAMESPACE


def test_kmip_tls_settings_fall_back(kmip_pki: Pki, tmp_path: Path) -> None:
    rest = TlsSettings.from_values(kmip_pki.server, kmip_pki.server_key, kmip_pki.ca)
    assert rest is not None
    assert kmip_tls_from_env({}, rest) is None  # the REST listener's, as it is
    own = kmip_tls_from_env({CERT: str(kmip_pki.server), KEY: str(kmip_pki.server_key),
                             CA: str(kmip_pki.ca)}, None)
    assert own is not None and own.client_auth == "required"
    kmip_tls_context(own)  # loads
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(kmip_pki.ca.read_bytes())
    mixed = kmip_tls_from_env({CA: str(other_ca)}, rest)  # the REST certificate, own CA
    assert mixed is not None
    assert (mixed.cert_file, mixed.client_ca_file) == (rest.cert_file, other_ca)
    no_ca = TlsSettings.from_values(kmip_pki.server, kmip_pki.server_key)
    inherited = kmip_tls_from_env({CERT: str(kmip_pki.server), KEY: str(kmip_pki.server_key)},
                                  rest)
    assert inherited is not None and inherited.client_ca_file == kmip_pki.ca
    alone = kmip_tls_from_env({CERT: str(kmip_pki.server), KEY: str(kmip_pki.server_key)},
                              no_ca)
    with pytest.raises(InvalidArgument, match="needs TLS with client certificates"):
        kmip_tls_context(alone)
    with pytest.raises(InvalidArgument, match=KEY):
        kmip_tls_from_env({CERT: str(kmip_pki.server)}, rest)
    with pytest.raises(InvalidArgument, match=CERT):
        kmip_tls_from_env({CA: str(kmip_pki.ca)}, None)
    bad = kmip_tls_from_env({CERT: str(tmp_path / "missing.pem"), KEY: str(kmip_pki.server_key),
                             CA: str(kmip_pki.ca)}, None)
    with pytest.raises(InvalidArgument, match=CERT):
        kmip_tls_context(bad)
