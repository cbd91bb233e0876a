"""keykeeper: a key management service."""

__version__ = "0.3.0"
