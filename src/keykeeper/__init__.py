"""keykeeper: a key management service."""

__version__ = "0.5.0"
