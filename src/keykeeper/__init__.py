"""keykeeper: a key management service."""

__version__ = "0.4.0"
