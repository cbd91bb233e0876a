"""The KMIP conformance runner (issue 5 §4): replays the OASIS KMIP Profiles test cases
(KMIP XML) against a live server over TLS, binds placeholders (bind.py), compares each
answer with documented tolerances (compare.py) and summarises per profile (report.py).
Pure: stdlib, ssl and keykeeper.kmip.ttlv only, so ``keykeeper kmip conformance`` runs it
from any machine. docs/kmip-conformance.md describes the rules."""
