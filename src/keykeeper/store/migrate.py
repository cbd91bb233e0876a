"""Bring a database to the newest schema with Alembic (run once per start, before serving)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

__all__ = ["upgrade"]

_SCRIPTS = Path(__file__).resolve().parent / "migrations"


def upgrade(engine: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
