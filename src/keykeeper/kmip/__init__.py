"""The KMIP interface (issue 5): the TTLV codec and its XML and JSON encodings (ttlv/),
request and response messages, one module per operation (ops/), and the mutual-TLS
server. Like rest/, it calls the service layer only."""
