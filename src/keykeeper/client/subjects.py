"""A hint for a certificate subject written least specific RDN first.

keykeeper compares a client certificate's subject with a principal's
``certificate_subjects`` exactly, as RFC 4514 text: most specific RDN first, the way
``openssl x509 -noout -subject -nameopt RFC2253`` prints it (``CN=app,O=Example,C=DE``;
RFC 4514 §2.1 writes the RDN sequence from the last to the first). A subject typed the
other way round (``C=DE,O=Example,CN=app``, as ``openssl req -subj`` takes it) is kept as
given and matches only a certificate whose subject is really encoded in that order, which
is rare; :func:`broad_first_hint` spots that order so that the CLI can warn.
"""

from __future__ import annotations

import itertools
import re

__all__ = ["broad_first_hint"]

# How broad each attribute type is: lower is broader (country, domain component first).
_BREADTH = {"c": 0, "dc": 0, "st": 1, "l": 2, "o": 3, "ou": 4, "cn": 5, "uid": 5,
            "emailaddress": 5, "e": 5}
_RDN_SEPARATOR = re.compile(r"(?<!\\),")


def broad_first_hint(subject: str) -> str | None:
    """The most-specific-first form of ``subject`` (a DN as RFC 4514 text) when it is
    written broad to specific: at least two RDNs of known types, each no more specific
    than the next known one, the first broader than the last (``O=Acme,CN=app`` gives
    ``CN=app,O=Acme``). None for anything else: a subjectAltName form (``DNS:...``), a
    DN of one RDN, or one whose order its types do not tell."""
    if "=" not in subject or re.match(r"\s*(DNS|URI|email|IP):", subject, re.IGNORECASE):
        return None
    rdns = [part.strip() for part in _RDN_SEPARATOR.split(subject.strip())]
    ranks = [min((_BREADTH.get(atv.split("=", 1)[0].strip().lower(), 9)
                  for atv in re.split(r"(?<!\\)\+", rdn)), default=9) for rdn in rdns]
    known = [r for r in ranks if r != 9]
    if len(known) < 2 or known[0] >= known[-1] \
            or not all(a <= b for a, b in itertools.pairwise(known)):
        return None
    return ",".join(reversed(rdns))
