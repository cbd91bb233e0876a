"""The key import and export rows of the route table (rest/routes.py appends them):
import parameters, import of wrapped material, and wrapped export (issue 6 §3, §4).

Built by a function, called by rest/routes.py once ``Route`` exists, so that either
module can be imported first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keykeeper.rest import schemas as ks
from keykeeper.rest import transfer_handlers as h
from keykeeper.rest import transfer_schemas as s

if TYPE_CHECKING:
    from keykeeper.rest.routes import Route

__all__ = ["transfer_routes"]

K = "/v1/keys/{key}"


def transfer_routes() -> tuple[Route, ...]:
    from keykeeper.rest.routes import Route

    return (
        Route("POST", K + "/import-parameters", "key.import_parameters", h.import_parameters,
              s.ImportParametersRequest, s.ImportParametersResponse,
              "A fresh RSA-4096 wrapping public key and a single-use import token for an "
              "external key (wrapping_algorithm RSA_AES_KEY_WRAP_SHA256 | RSA_OAEP_SHA256, "
              "expires_in default 24 h)"),
        Route("POST", K + "/import", "key.import", h.import_material, s.ImportRequest,
              ks.KeyOut,
              "Import wrapped key material (format raw | pkcs8 | pkcs1 | sec1 | spki) as the "
              "external key's new primary version; the token is spent"),
        Route("POST", K + "/export", "key.export", h.export, s.ExportRequest,
              s.ExportResponse,
              "Export an exportable key's version wrapped under an RSA public key or a "
              "keykeeper key of purpose wrap (key.export; dual control by default)"),
    )
