"""Stored data (purpose store, crypto/stored.py): bytes kept and given back, never
generated, no operation."""

from __future__ import annotations

import pickle

import pytest

from keykeeper.crypto import Purpose, generate_material, get_spec, load_private
from keykeeper.crypto.keyio import check_import_format, import_private_material
from keykeeper.crypto.stored import MAX_STORED_BYTES
from keykeeper.crypto.wrap import exportable_material
from keykeeper.errors import FailedPrecondition, InvalidArgument

from .test_handles import PRIVATE_OPS

STORED = ["SECRET_DATA", "OPAQUE_DATA"]


@pytest.mark.parametrize("name", STORED)
def test_spec_is_stored_data(name: str) -> None:
    spec = get_spec(name)
    assert spec.purpose == Purpose.STORE
    assert (spec.key_bits, spec.security_strength, spec.asymmetric) == (0, 0, False)
    assert not spec.quantum_safe and not spec.legacy


@pytest.mark.parametrize("name", STORED)
def test_bytes_round_trip_and_no_operation(name: str) -> None:
    spec = get_spec(name)
    for data in (b"\x00", b"password", b"\xff" * MAX_STORED_BYTES):
        handle = load_private(spec, data)
        assert exportable_material(handle) == (data, "raw")
    handle = load_private(spec, b"s3cret")
    assert "s3cret" not in repr(handle) and repr(handle) == f"<KeyHandle {name}>"
    with pytest.raises(TypeError):
        pickle.dumps(handle)
    for op in PRIVATE_OPS.values():
        with pytest.raises(FailedPrecondition, match="does not support"):
            op(handle)


@pytest.mark.parametrize("name", STORED)
def test_size_limits_and_no_generation(name: str) -> None:
    spec = get_spec(name)
    for data in (b"", b"x" * (MAX_STORED_BYTES + 1)):
        with pytest.raises(InvalidArgument, match=f"1 to {MAX_STORED_BYTES} bytes"):
            load_private(spec, data)
    with pytest.raises(InvalidArgument, match="does not generate"):
        generate_material(spec)
    assert check_import_format(spec, "raw") == "raw"
    assert import_private_material(spec, "raw", b"abc") == b"abc"
    with pytest.raises(InvalidArgument):
        check_import_format(spec, "pkcs8")
