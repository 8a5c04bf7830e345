"""The real messages of the shared reference folder (``shared/reference/messages``), read where
they lie, and readdressed: their receivers are real units the sandbox does not hold, so a test
sends a message to a sandbox receiver instead, every occurrence of the receiver's GLN and SOR-ID
(and nothing else) replaced."""

from __future__ import annotations

from tests.support.reference import reference_path

# The receiver of each real message as published (shared/reference/messages/README.md):
# (GLN or EAN, SOR-ID or None).
REAL_RECEIVERS: dict[str, tuple[str, str | None]] = {
    "cc5-S-B-png.xml": ("5790002408496", "1017421000016003"),
    "ack-AA-3.3.1.1.xml": ("5790000209354", "265161000016000"),
    "ack-AE-3.4.4.json": ("5790000209354", "265161000016000"),
    "hn-SLHJ_H-discharge.json": ("5790001348120", "953741000016009"),
    "xdis91-ec-physio-2014.xml": ("5790000120314", None),
    "xctl03-ec-receipt.xml": ("5790000181872", None),
    "edi-DIS91-1998.edi": ("5790000128700", None),
    "edi-CTL03.edi": ("5790000181872", None),
}


def real_message(name: str) -> bytes:
    """A real message of the shared reference folder, byte for byte."""
    return reference_path("messages", name).read_bytes()


def readdressed(name: str, gln: str, sor_id: str | None = None) -> bytes:
    """The real message ``name`` sent to ``gln`` (and ``sor_id``) instead of its own receiver:
    each occurrence of the receiver's GLN and SOR-ID is replaced, in the message's own bytes
    (the identifiers are ASCII digits in every character set the messages use)."""
    data = real_message(name)
    old_gln, old_sor_id = REAL_RECEIVERS[name]
    assert old_gln.encode() in data, f"{name} does not name its receiver {old_gln}"
    data = data.replace(old_gln.encode(), gln.encode())
    if old_sor_id is not None and sor_id is not None:
        data = data.replace(old_sor_id.encode(), sor_id.encode())
    return data
