"""The audit sink list of ``KEYKEEPER_AUDIT_SINKS``.

A comma-separated list of ``KIND[:POLICY[@TIMEOUT]][:TARGET]``:

=============  ===========================================================================
``file``       the audit file (``KEYKEEPER_AUDIT_FILE``); TARGET another path
``database``   the ``audit_records`` table of the key store (feeds ``GET /v1/audit``)
``syslog``     TARGET ``udp://HOST:PORT``, ``tcp://HOST:PORT`` or ``unix:///dev/log``
``webhook``    TARGET an ``http://`` or ``https://`` URL (batches POSTed as NDJSON)
``none``       alone: no audit at all -- for benchmarks only, never in production
=============  ===========================================================================

POLICY is ``required`` (a request waits until one required sink has recorded it and
fails 503 ``unavailable`` if none can) or ``best_effort`` (never waits, never fails a
request). TIMEOUT is in seconds (default ``KEYKEEPER_AUDIT_TIMEOUT``, 2). The default
list is ``file:required,database:best_effort``. Examples::

    file:required,database:best_effort,syslog:best_effort:udp://10.0.0.5:514
    file:required@5,webhook:required:https://siem.example/audit
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEFAULT_SINKS", "KINDS", "SinkSpec", "parse_sinks"]

DEFAULT_SINKS = "file:required,database:best_effort"
KINDS = ("file", "database", "syslog", "webhook")
POLICIES = ("required", "best_effort")
_POLICY = re.compile(r"(required|best_effort)(?:@(\d+(?:\.\d+)?))?\Z")


@dataclass(frozen=True)
class SinkSpec:
    kind: str
    policy: str = "required"
    timeout: float | None = None    # seconds; None: the global default
    target: str | None = None

    @property
    def required(self) -> bool:
        return self.policy == "required"

    @property
    def name(self) -> str:
        return self.kind if not self.target else f"{self.kind}:{self.target}"


def parse_sinks(text: str) -> list[SinkSpec]:
    """Parse the sink list; an empty list for ``none``. Raises ValueError with the reason."""
    text = text.strip()
    if text == "none":
        return []
    specs: list[SinkSpec] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise ValueError("empty entry in the audit sink list")
        kind, _, rest = item.partition(":")
        if kind not in KINDS:
            raise ValueError(f"unknown audit sink {kind!r}: use one of {', '.join(KINDS)} "
                             "(or 'none' alone)")
        policy, timeout, target = ("best_effort" if kind == "database" else "required"), None, \
            None
        if rest:
            head, sep, tail = rest.partition(":")
            m = _POLICY.match(head)
            if m:
                policy = m.group(1)
                timeout = float(m.group(2)) if m.group(2) else None
                target = tail if sep else None
            else:
                target = rest
        if target == "":
            target = None
        if kind == "webhook" and not target:
            raise ValueError("the webhook sink needs a URL: webhook:POLICY:https://...")
        if kind == "database" and target:
            raise ValueError("the database sink takes no target")
        if timeout is not None and not 0 < timeout <= 300:
            raise ValueError(f"audit sink timeout must be in (0, 300] seconds: {item!r}")
        specs.append(SinkSpec(kind, policy, timeout, target))
    if not any(s.required for s in specs):
        raise ValueError("at least one audit sink must be required (or use 'none' for a "
                         "benchmark)")
    return specs
