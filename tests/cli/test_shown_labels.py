"""Tables count the kmip.* labels (KMIP attributes, encoded TTLV) instead of printing them."""

from keykeeper.cli._state import shown_labels


def test_kmip_labels_are_counted_not_printed() -> None:
    labels = {"team": "db", "kmip.1.Name.0": '["Name", [1, 2]]', "kmip.1.Digest.0": "[]"}
    assert shown_labels(labels) == {"team": "db", "kmip.*": "2 KMIP attribute(s)"}
    assert shown_labels({"team": "db"}) == {"team": "db"}
