"""Every table of the schema is either archived or left out with a reason, so a table
added later is not silently lost."""

from keykeeper.store import backup_tables as bt
from keykeeper.store.schema import metadata


def test_every_table_is_classified() -> None:
    archived = {spec.name for spec in bt.ARCHIVED}
    assert not archived & set(bt.LEFT_OUT)
    assert set(metadata.tables) - {"system_config"} <= archived | set(bt.LEFT_OUT), \
        "classify the new table in store/backup_tables.py"
    assert "system_config" in archived


def test_wrapped_columns_never_archived_as_is() -> None:
    kinds = {spec.name: dict(bt.column_kinds(spec)) for spec in bt.ARCHIVED}
    assert "wrapped_kek" not in kinds["namespaces"]
    assert kinds["key_versions"]["wrapped_material"] == "material"
    assert not [c for t, cols in kinds.items() for c, k in cols.items()
                if k == "bytes" and c.startswith("wrapped")]
