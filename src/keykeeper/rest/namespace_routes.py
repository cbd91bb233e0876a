"""The namespace rows of the route table (rest/routes.py appends them).

Built by a function, called by rest/routes.py once ``Route`` exists, so that either
module can be imported first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keykeeper.rest import namespace_handlers as h
from keykeeper.rest import namespace_schemas as s

if TYPE_CHECKING:
    from keykeeper.rest.routes import Route

__all__ = ["namespace_routes"]

NS = "/v1/namespaces"
N = NS + "/{name}"


def namespace_routes() -> tuple[Route, ...]:
    from keykeeper.rest.routes import Route

    return (
        Route("POST", NS, "namespace.create", h.create_namespace, s.CreateNamespaceRequest,
              s.NamespaceOut, "Create a namespace with its own KEK", status=201),
        Route("GET", NS, "namespace.list", h.list_namespaces, None, s.NamespaceList,
              "List namespaces (deleted ones are not listed)"),
        Route("GET", N, "namespace.get", h.get_namespace, None, s.NamespaceOut,
              "Show a namespace"),
        Route("PATCH", N, "namespace.update", h.update_namespace, s.UpdateNamespaceRequest,
              s.NamespaceOut, "Change description, allow_legacy_rsa_2048 or rate_limit"),
        Route("DELETE", N, "namespace.delete", h.delete_namespace, None, s.NamespaceDeleted,
              "Delete a namespace: crypto-erase its KEK and every key in it (dual control)"),
    )
