"""``principal create/update --cert-subject`` with a DN written least specific RDN first,
against a live server: kept as given (a certificate may be encoded so), with a warning
line that shows the usual order (client/subjects.py); the most-specific-first form is
kept without one."""

from __future__ import annotations

import secrets

import pytest
from typer.testing import CliRunner, Result

from keykeeper.cli._state import State
from keykeeper.cli.main import app
from keykeeper.client.subjects import broad_first_hint
from tests.support.server import ServerProcess


def cli(server: ServerProcess, *args: str) -> Result:
    env = {"KEYKEEPER_ADDR": server.addr, "KEYKEEPER_TOKEN": server.root_token}
    return CliRunner().invoke(app, list(args), env=env, obj=State())


@pytest.mark.parametrize(("given", "stored", "usual"), [
    ("O=Acme,CN=app", "O=Acme,CN=app", "CN=app,O=Acme"),
    ("C=DE, O=Example, CN=app", "C=DE,O=Example,CN=app", "CN=app,O=Example,C=DE"),
    ("dc=com,dc=example,uid=app", "DC=com,DC=example,UID=app", "uid=app,dc=example,dc=com"),
])
def test_reversed_subject_is_kept_with_a_warning(
        live_server: ServerProcess, given: str, stored: str, usual: str) -> None:
    """Kept as given (a certificate may really be encoded so), with one warning line on
    stderr that shows the usual order; exit status 0."""
    s = live_server
    name = f"subj-{secrets.token_hex(4)}"
    given, stored, usual = (v.replace("app", name) for v in (given, stored, usual))
    warning = (f"warning: certificate subject {given!r} is written least specific RDN "
               f"first; a certificate's subject usually reads {usual!r} (kept as given: it "
               "matches only a certificate encoded in this order)")
    res = cli(s, "principal", "create", name, "--cert-subject", given)
    assert res.exit_code == 0, res.output
    assert res.stderr.strip().splitlines() == [warning]
    assert s.get(f"/v1/principals/{name}").json()["certificate_subjects"] == [stored]
    res = cli(s, "principal", "update", name, "--cert-subject", given)
    assert res.exit_code == 0 and res.stderr.strip().splitlines() == [warning]


@pytest.mark.parametrize("given", ["CN=app,O=Acme", "CN=app,DC=example,DC=com", "O=Acme",
                                   "CN=app,OU=x,O=Acme,C=DE"])
def test_most_specific_first_subject_is_kept(live_server: ServerProcess, given: str) -> None:
    s = live_server
    name = f"subj-{secrets.token_hex(4)}"
    given = given.replace("app", name).replace("Acme", name)
    res = cli(s, "principal", "create", name, "--cert-subject", given)
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    assert s.get(f"/v1/principals/{name}").json()["certificate_subjects"] == [given]


@pytest.mark.parametrize(("subject", "hint"), [
    ("O=Acme,CN=app", "CN=app,O=Acme"),
    ("O=x,CN=a\\,b", "CN=a\\,b,O=x"),           # an escaped comma stays in its RDN
    ("C=DE,O=Acme+OU=ops,CN=app", "CN=app,O=Acme+OU=ops,C=DE"),
    ("CN=app,O=Acme", None), ("O=Acme", None), ("DNS:a.example", None),
    ("serialNumber=1,CN=x", None),              # one known type: order not told
    ("CN=app,O=Acme,CN=other", None),           # not monotonic
])
def test_broad_first_hint(subject: str, hint: str | None) -> None:
    assert broad_first_hint(subject) == hint
