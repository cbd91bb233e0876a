"""Regressions from the lifecycle breaker pass: far dates, trims and usage limits that
would have stranded a key, crypto-periods silently lengthened, and a bulk revocation
that grew between request and approval."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from keykeeper.errors import InvalidArgument, NotFound
from keykeeper.service.bulk_revoke import RevokeQuery
from keykeeper.service.keys import CreateKey
from keykeeper.store.schema import key_versions
from tests.approvals.conftest import Team
from tests.integration.conftest import Node

FAR = ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00", "9999-12-31T00:00:00Z",
       "1969-12-31T23:59:59Z")


@pytest.mark.parametrize("when", FAR)
def test_far_dates_are_invalid_arguments_not_overflows(node: Node, when: str) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="k", rotation_period="30d"))
    for field in ("next_rotation_time", "deactivation_date"):
        with pytest.raises(InvalidArgument, match="between 1970-01-01 and 9000-01-01"):
            svc.keys.update(ctx, "k", lifecycle={field: when})
    with pytest.raises(InvalidArgument, match="between 1970-01-01 and 9000-01-01"):
        CreateKey(name="far", activation_date=when)
    with pytest.raises(InvalidArgument):
        svc.bulk_revoke.revoke(ctx, RevokeQuery(created_before=datetime.fromisoformat(when)),
                               None, dry_run=True)
    assert [k.name for k in svc.keys.list_keys(ctx, _all(), None, None)[0]] == ["k"]


def _all():  # type: ignore[no-untyped-def]
    from keykeeper.store.keys import KeyFilter
    return KeyFilter()


def test_latest_activation_date_still_has_representable_period_ends(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="late", activation_date="8999-12-31T00:00:00Z",
                                         rotation_period="30d",
                                         originator_usage_period="24000d",
                                         recipient_usage_period="24000d"))
    periods = svc.keys.periods_of([key])[key.id]
    from keykeeper.domain.lifecycle import recipient_end
    assert recipient_end(key, key.versions[0], periods).year == 9065
    with pytest.raises(InvalidArgument, match="68 years"):
        svc.keys.update(ctx, "late", lifecycle={"recipient_usage_period": "36500d"})


def test_lowering_the_usage_limit_below_the_count_starts_a_rotation(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="k"))
    with svc.deps.transaction() as conn:   # five protect operations already counted
        conn.execute(update(key_versions).where(key_versions.c.key_id == key.id)
                     .values(protect_count=5))
    changed = svc.keys.update(ctx, "k", lifecycle={"usage_limit": 3})
    assert changed.rotation_reason == "usage"
    assert changed.next_rotation_time == node.clock()
    # ... and the scheduler's rotation then replaces the exhausted version.
    from keykeeper.service.rotation import Rotator
    assert Rotator(svc.deps, svc.lookup).run(node.clock()).done == 1
    assert svc.keys.get(ctx, "k").primary_version == 2


def test_a_recipient_period_shorter_than_the_effective_originator_period_is_refused(
        node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="k"))   # originator: SP 800-57's 2 years
    with pytest.raises(InvalidArgument, match="recipient_usage_period"):
        svc.keys.update(ctx, "k", lifecycle={"recipient_usage_period": "1d"})
    key = svc.keys.update(ctx, "k", lifecycle={"originator_usage_period": "1d",
                                               "recipient_usage_period": "2d"})
    assert (key.originator_usage_period, key.recipient_usage_period) == (86400, 2 * 86400)


def test_bulk_revoke_filters_are_checked(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="k"))
    with pytest.raises(InvalidArgument, match="BOGUS"):
        svc.bulk_revoke.revoke(ctx, RevokeQuery(algorithm="BOGUS"), None, dry_run=True)
    with pytest.raises(NotFound):
        svc.bulk_revoke.revoke(ctx, RevokeQuery(namespace="nope"), None, dry_run=True)
    lower = svc.bulk_revoke.revoke(ctx, RevokeQuery(algorithm="aes_256_gcm"), None,
                                   dry_run=True)
    assert lower["matched"] == 1


def test_an_approved_bulk_revocation_revokes_only_what_the_approvers_saw(
        team: Team) -> None:
    svc = team.svc
    svc.namespaces.create(team.root(), "ns2")
    svc.keys.create(team.root(), CreateKey(name="before", namespace="ns2"))
    from keykeeper.errors import ApprovalRequired
    with pytest.raises(ApprovalRequired) as info:
        svc.bulk_revoke.revoke(team.who("co"), RevokeQuery(namespace="ns2"), "incident")
    team.node.clock.advance(seconds=1)
    svc.keys.create(team.root(), CreateKey(name="after", namespace="ns2"))
    approval_id = info.value.approval_id
    assert approval_id is not None
    svc.approvals.approve(team.who("c1"), approval_id)
    svc.approvals.approve(team.who("c2"), approval_id)
    assert svc.keys.get(team.root(), "ns2:before").state == "compromised"
    assert svc.keys.get(team.root(), "ns2:after").state == "active"
    assert datetime.now(UTC) > team.node.clock()  # the test clock, not wall time, decided


def test_recipient_periods_are_never_silently_lengthened(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    with pytest.raises(InvalidArgument, match="recipient_usage_period"):
        svc.keys.create(ctx, CreateKey(name="rc1", recipient_usage_period="1d"))
    # A namespace's shorter recipient period shortens its keys' default originator period.
    svc.namespaces.create(ctx, "short", recipient_usage_period="1d")
    key = svc.keys.create(ctx, CreateKey(name="k", namespace="short"))
    periods = svc.keys.periods_of([key])[key.id]
    assert (periods.originator, periods.recipient) == (86400, 86400)


def test_a_manual_rotation_settles_a_pending_usage_rotation(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="k"))
    with svc.deps.transaction() as conn:
        conn.execute(update(key_versions).where(key_versions.c.key_id == key.id)
                     .values(protect_count=5))
    assert svc.keys.update(ctx, "k", lifecycle={"usage_limit": 3}).rotation_reason == "usage"
    rotated = svc.keys.rotate(ctx, "k")
    assert rotated.rotation_reason is None and rotated.next_rotation_time is None
    from keykeeper.service.rotation import Rotator
    assert Rotator(svc.deps, svc.lookup).run(node.clock()).done == 0   # nothing left due
    assert svc.keys.get(ctx, "k").primary_version == 2
