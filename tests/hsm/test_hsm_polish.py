"""A refused PIN is not tried again (issue 6 polish): real HSMs lock the user PIN after a
few failed logins, so after the token refuses the PIN the pkcs11 auto-unseal stops
retrying, HSM-key calls stop logging in, and only a changed PIN is tried (once) by the
retry or by an explicit unseal; other token faults are still retried. On SoftHSM2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keykeeper.custody.hsm.token import HsmConfig, LoginRefused, Token
from keykeeper.custody.keyring import Custody
from keykeeper.errors import Unavailable
from keykeeper.service.audit import Auditor
from keykeeper.service.deps import Deps
from keykeeper.service.facade import Services, build_services
from keykeeper.service.key_args import CreateKey
from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade
from tests.hsm.conftest import HsmNode, hsm_token
from tests.integration.conftest import Clock, ListSink
from tests.support.server import ServerProcess
from tests.support.softhsm import LIBRARY, SoftToken


def _services(url: str, token: Token | None) -> Services:
    deps = Deps(engine=make_engine(url), custody=Custody(hsm=token), clock=Clock())
    return build_services(deps, Auditor([ListSink()], Clock()))


@pytest.fixture
def pkcs11_store(database_url: str, soft_token: SoftToken) -> Iterator[str]:
    """A store initialised with the pkcs11 seal on ``soft_token`` (right PIN)."""
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    token = Token(HsmConfig(library=LIBRARY, token_label=soft_token.label, pin=soft_token.pin))
    services = _services(database_url, token)
    services.system.init(seal="pkcs11")
    assert services.system.health().sealed is False
    services.deps.custody.seal()
    token.close()
    services.deps.engine.dispose()
    yield database_url


def _pin_env(monkeypatch: pytest.MonkeyPatch, soft: SoftToken, pin_file: Path) -> None:
    for k, v in soft.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("KEYKEEPER_PKCS11_PIN_FILE", str(pin_file))
    monkeypatch.delenv("KEYKEEPER_PKCS11_PIN", raising=False)


def test_a_refused_pin_is_not_tried_again(soft_token: SoftToken, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    token = Token(HsmConfig(library=LIBRARY, token_label=soft_token.label, pin="0000000000"))
    with pytest.raises(LoginRefused, match="refused the login") as err:
        token.check()
    assert err.value.code == "unavailable" and err.value.http_status == 503
    assert isinstance(err.value, Unavailable) and err.value.reason == "PinIncorrect"
    assert token.login_attempts == 1 and token.login_refused
    for _ in range(5):                      # every later call fails without a C_Login
        with pytest.raises(LoginRefused):
            token.check()
    assert token.login_attempts == 1
    # The same PIN read again changes nothing; a corrected file logs in once.
    pin_file = tmp_path / "pin"
    pin_file.write_text("0000000000\n")
    _pin_env(monkeypatch, soft_token, pin_file)
    assert token.reload_pin(only_if_changed=True) is False and token.login_refused
    pin_file.write_text(soft_token.pin + "\n")
    assert token.reload_pin(only_if_changed=True) is True and not token.login_refused
    token.check()
    assert token.login_attempts == 2
    token.close()


def test_auto_unseal_stops_after_a_refused_pin_and_unseal_rereads_the_pin(
        pkcs11_store: str, soft_token: SoftToken, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("not-the-pin\n")
    _pin_env(monkeypatch, soft_token, pin_file)
    config = HsmConfig.from_env()
    assert config is not None
    token = Token(config)
    services = _services(pkcs11_store, token)
    system = services.system
    assert system.auto_unseal() is False                    # at start
    h = system.health()
    assert h.sealed is True and h.seal_error is not None
    assert "refused the login (PinIncorrect)" in h.seal_error
    assert "retries are stopped" in h.seal_error and "not-the-pin" not in h.seal_error
    assert token.login_attempts == 1
    for _ in range(5):                                      # the 5-second retry ticks
        assert system.retry_auto_unseal() is False
    assert token.login_attempts == 1 and system.health().sealed is True
    # An explicit unseal with the PIN unchanged: refused without a login.
    with pytest.raises(Unavailable, match="has not changed"):
        system.unseal()
    assert token.login_attempts == 1
    # Fix the PIN file, unseal: no restart needed.
    pin_file.write_text(soft_token.pin + "\n")
    h = system.unseal()
    assert h.sealed is False and h.seal_error is None and token.login_attempts == 2
    token.close()
    services.deps.engine.dispose()


def test_the_retry_tries_a_changed_pin_once(pkcs11_store: str, soft_token: SoftToken,
                                            tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("not-the-pin\n")
    _pin_env(monkeypatch, soft_token, pin_file)
    config = HsmConfig.from_env()
    assert config is not None
    token = Token(config)
    services = _services(pkcs11_store, token)
    assert services.system.auto_unseal() is False
    pin_file.write_text("still-not-the-pin\n")               # changed, but wrong: one try
    assert services.system.retry_auto_unseal() is False
    assert services.system.retry_auto_unseal() is False
    assert token.login_attempts == 2
    pin_file.write_text(soft_token.pin + "\n")               # another worker's view: no call
    assert services.system.retry_auto_unseal() is True
    assert services.system.health().sealed is False and token.login_attempts == 3
    token.close()
    services.deps.engine.dispose()


def test_other_token_faults_are_still_retried(pkcs11_store: str) -> None:
    other = hsm_token()          # right PIN, but not the token holding the root key
    token = Token(HsmConfig(library=LIBRARY, token_label=other.label, pin=other.pin))
    services = _services(pkcs11_store, token)
    assert services.system.auto_unseal() is False
    first = token.login_attempts
    error = services.system.health().seal_error
    assert error is not None and "retries are stopped" not in error
    for _ in range(3):
        assert services.system.retry_auto_unseal() is False
    assert services.system.needs_auto_unseal() and not token.login_refused
    assert token.login_attempts > first                     # each retry used the token
    token.close()
    services.deps.engine.dispose()


def test_a_server_with_a_wrong_pin_unseals_after_the_file_is_fixed(tmp_path: Path) -> None:
    soft = hsm_token()
    pin_file = tmp_path / "server.pin"
    pin_file.write_text(soft.pin + "\n")
    env = {**soft.env, "KEYKEEPER_PKCS11_PIN_FILE": str(pin_file)}
    server = ServerProcess(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'kk.db'}",
                           env=env)
    try:
        server.start()
        r = server.http.post("/v1/sys/init", json={"seal": "pkcs11"})
        assert r.status_code == 200, r.text
        server.stop()
        pin_file.write_text("not-the-pin\n")
        server.start()
        h = server.http.get("/v1/sys/health").json()
        assert h["sealed"] is True and "retries are stopped" in h["seal_error"], h
        r = server.http.post("/v1/sys/unseal", json={})
        assert (r.status_code, r.json()["code"]) == (503, "unavailable"), r.text
        assert "has not changed" in r.json()["detail"]
        pin_file.write_text(soft.pin + "\n")
        r = server.http.post("/v1/sys/unseal", json={})
        assert r.status_code == 200 and r.json()["sealed"] is False, r.text
        log = (tmp_path / "server.log").read_text()
        assert "not-the-pin" not in log and soft.pin not in log
        # The start banner: init first; then the pkcs11 seal unseals itself.
        assert "Not initialized: run `keykeeper init`" in log
        assert "Sealed by a PKCS#11 token: it unseals itself" in log
        assert "after every start" not in log
    finally:
        server.stop()


def test_versions_say_they_live_in_the_hsm(hsm_node: HsmNode) -> None:
    from keykeeper.rest.convert import version_out

    key = hsm_node.create("in-hsm", "AES_256_GCM")
    hsm_node.services.keys.rotate(hsm_node.ctx(), key)
    versions = hsm_node.services.keys.get(hsm_node.ctx(), key).versions
    assert [v.in_hsm for v in versions] == [True, True]
    assert all(version_out(v).in_hsm and not version_out(v).public_only for v in versions)
    soft = hsm_node.services.keys.create(hsm_node.ctx(), CreateKey(name="soft"))
    assert [v.in_hsm for v in soft.versions] == [False]
