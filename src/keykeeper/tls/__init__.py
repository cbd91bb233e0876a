"""Server-side TLS for every keykeeper listener (REST now, KMIP later): the settings, the
cipher policy and the :class:`ssl.SSLContext` built from them (docs/tls.md).

It imports nothing of the server but :mod:`keykeeper.errors`, so any listener may use it.
"""

from keykeeper.tls.context import (
    CLIENT_AUTH_MODES,
    TLS12_CIPHERS,
    ClientAuth,
    TlsSettings,
    issuing_ca_file,
    server_context,
)

__all__ = ["CLIENT_AUTH_MODES", "TLS12_CIPHERS", "ClientAuth", "TlsSettings", "issuing_ca_file",
           "server_context"]
