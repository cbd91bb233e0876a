"""Faults fail closed: a wrong PIN, a missing token or library, a session closed under
the pool, an unsupported mechanism: 503 ``unavailable`` or 409 ``failed_precondition``,
never a software key; a pooled session that failed is replaced by a fresh one."""

from __future__ import annotations

import pkcs11
import pytest

from keykeeper.custody.hsm.token import HsmConfig, Token
from keykeeper.errors import FailedPrecondition, Unavailable
from keykeeper.service.key_args import CreateKey
from tests.hsm.conftest import HsmNode, hsm_token, make_hsm_node, token_for
from tests.support.softhsm import LIBRARY


def test_a_wrong_pin_is_unavailable(database_url: str) -> None:
    from keykeeper.store.engine import make_engine
    from keykeeper.store.migrate import upgrade

    soft = hsm_token()            # never logged in to by this process
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    token = token_for(soft, pin="0000000000")
    node = make_hsm_node(database_url, token, soft)
    with pytest.raises(Unavailable, match="refused the login") as err:
        node.services.keys.create(node.ctx(), CreateKey(name="k", protection="hsm"))
    assert err.value.code == "unavailable" and "0000000000" not in str(err.value)
    with pytest.raises(Exception, match="not found"):      # nothing was made instead
        node.services.keys.get(node.ctx(), "k")
    token.close()
    node.services.deps.engine.dispose()


@pytest.mark.parametrize("config", [
    HsmConfig(library=LIBRARY, token_label="kk-no-such-token", pin="1234"),
    HsmConfig(library=LIBRARY, token_serial="ffffffffffffffff", pin="1234"),
    HsmConfig(library="/nonexistent/libpkcs11.so", token_label="x", pin="1234"),
])
def test_a_missing_token_or_library_is_unavailable(config: HsmConfig) -> None:
    with pytest.raises(Unavailable) as err:
        Token(config).check()
    assert err.value.code == "unavailable" and "1234" not in str(err.value)


def test_a_session_closed_under_the_pool_is_replaced(hsm_node: HsmNode) -> None:
    hsm_node.create("pool", "AES_256_GCM")
    crypto, ctx = hsm_node.services.crypto, hsm_node.ctx()
    ct = crypto.encrypt(ctx, "pool", b"before").ciphertext
    token = hsm_node.token
    assert token is not None
    pooled = token._pool.get_nowait()          # the one session the calls above used
    pooled.close()                             # closed behind the pool's back
    token._pool.put(pooled)
    with pytest.raises(Unavailable, match="SessionHandleInvalid") as err:
        crypto.encrypt(ctx, "pool", b"during")
    assert err.value.code == "unavailable"
    assert token._pool.qsize() == 0            # the failed session was not pooled again
    assert crypto.decrypt(ctx, "pool", ct) == (b"before", 1)    # a fresh session
    assert token._pool.qsize() == 1


def test_every_session_closed_at_once_recovers(hsm_node: HsmNode) -> None:
    """C_Finalize/C_Initialize (a token reset) closes every session: each pooled one
    fails once, then fresh ones log in again."""
    hsm_node.create("reset", "ECDSA_P256_SHA256")
    crypto, ctx = hsm_node.services.crypto, hsm_node.ctx()
    crypto.sign(ctx, "reset", b"m", prehashed=False, signature_format=None)
    pkcs11.lib(LIBRARY).reinitialize()
    with pytest.raises(Unavailable):
        crypto.sign(ctx, "reset", b"m", prehashed=False, signature_format=None)
    sig, _ = crypto.sign(ctx, "reset", b"m", prehashed=False, signature_format=None)
    assert crypto.verify(ctx, "reset", b"m", sig, prehashed=False,
                         signature_format=None)[0] is True


def test_an_unsupported_mechanism_is_a_failed_precondition(hsm_node: HsmNode) -> None:
    token = hsm_node.token
    assert token is not None
    with pytest.raises(FailedPrecondition, match="does not support") as err, \
            token.session() as s:
        key = s.generate_key(pkcs11.KeyType.AES, 256, store=False)
        key.encrypt(b"x" * 16, mechanism=pkcs11.Mechanism.AES_CCM)
    assert err.value.code == "failed_precondition"
    token.check()                               # the pool still works


def test_concurrent_calls_are_safe(hsm_node: HsmNode) -> None:
    """SoftHSM takes no locks when python-pkcs11 initializes it (no arguments): the token
    serializes calls per process, so threads share the pool without crashing it."""
    import threading

    hsm_node.create("threads", "AES_256_GCM")
    hsm_node.create("threads-sig", "ECDSA_P256_SHA256")
    crypto, ctx = hsm_node.services.crypto, hsm_node.ctx()
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(40):
                data = f"{i}-{j}".encode()
                ct = crypto.encrypt(ctx, "threads", data).ciphertext
                assert crypto.decrypt(ctx, "threads", ct)[0] == data
                sig, _ = crypto.sign(ctx, "threads-sig", data, prehashed=False,
                                     signature_format=None)
                assert crypto.verify(ctx, "threads-sig", data, sig, prehashed=False,
                                     signature_format=None)[0]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert hsm_node.token is not None and hsm_node.token._pool.qsize() <= 4
