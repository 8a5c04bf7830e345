"""Ways to break one sandbox day's files in place, as a source could publish them.

Each breaker takes the day folder (``sor.zip`` and ``Sor_complete.zip``) and rewrites one of the
files; the sandbox server then serves the broken file with fresh validators. The XML and CSV
tricks are those of ``tests/unit/parsing`` (hostile prologs, cut files, lying zip headers),
applied to a whole generated day instead of a hand-written snippet.
"""

from __future__ import annotations

import re
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

from soredi_sync.domain.gln import gs1_check_digit
from tests.support.sor_writer import write_zip

XML_ZIP, CSV_ZIP = "sor.zip", "Sor_complete.zip"
XML, EDI_TYPES, GLN_TYPES, GLNS = (
    "Sor.xml",
    "EDITypes.csv",
    "LocationsCodeEDITypeMap.csv",
    "LocationsCodes.csv",
)
BOM = "\ufeff"
_CSV_BOM = b"\xef\xbb\xbf"


# -- plumbing -----------------------------------------------------------------------------------


def read_member(day: Path, zip_name: str, member: str) -> bytes:
    with zipfile.ZipFile(day / zip_name) as archive:
        return archive.read(member)


def replace_member(day: Path, zip_name: str, member: str, data: bytes) -> None:
    """Rewrite ``zip_name`` with ``member`` replaced and the other members as they were."""
    with zipfile.ZipFile(day / zip_name) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    assert member in members, (member, sorted(members))
    members[member] = data
    write_zip(day / zip_name, members)


def edit_xml(day: Path, edit: Callable[[str], str]) -> None:
    text = read_member(day, XML_ZIP, XML).decode("utf-8-sig")
    changed = edit(text)
    assert changed != text, "the edit changed nothing"
    replace_member(day, XML_ZIP, XML, (BOM + changed).encode("utf-8"))


def csv_lines(day: Path, member: str) -> list[str]:
    return read_member(day, CSV_ZIP, member).decode("utf-8-sig").splitlines()


def write_csv_lines(day: Path, member: str, lines: list[str]) -> None:
    replace_member(day, CSV_ZIP, member, _CSV_BOM + ("\r\n".join(lines) + "\r\n").encode())


def xml_glns(day: Path) -> list[str]:
    text = read_member(day, XML_ZIP, XML).decode("utf-8-sig")
    return re.findall(r"<EanLocationCode>(\d{13})</EanLocationCode>", text)


def _ean_entity(gln: str) -> str:
    return (
        rf"<EanLocationCodeEntity>\s*<EanLocationCode>{gln}</EanLocationCode>"
        r".*?</EanLocationCodeEntity>"
    )


def _prolog(text: str, doctype: str) -> str:
    """Insert a DOCTYPE right after the XML declaration."""
    declaration_end = text.index("?>") + 2
    return text[:declaration_end] + doctype + text[declaration_end:]


# -- archives -----------------------------------------------------------------------------------


def truncate_zip(day: Path) -> None:
    """The file is complete on the wire but was cut in half when it was published."""
    data = (day / XML_ZIP).read_bytes()
    (day / XML_ZIP).write_bytes(data[: len(data) // 2])


def empty_download(day: Path) -> None:
    (day / XML_ZIP).write_bytes(b"")


def empty_member(day: Path) -> None:
    replace_member(day, XML_ZIP, XML, b"")


BOMB_PADDING = 20 * 1024 * 1024


def zip_bomb(day: Path) -> None:
    """Sor.xml followed by 20 MB of blanks (legal after the root element): packed ~470:1."""
    data = read_member(day, XML_ZIP, XML) + b" " * BOMB_PADDING
    replace_member(day, XML_ZIP, XML, data)


def zip_bomb_with_lying_header(day: Path) -> None:
    """The same bomb, its headers claiming 1,000 bytes unpacked (so the up-front ratio check
    passes): only reading can tell."""
    zip_bomb(day)
    path = day / XML_ZIP
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(XML)
    real = struct.pack("<I", info.file_size)
    data = path.read_bytes()
    assert data.count(real) == 2  # the local header and the central directory
    path.write_bytes(data.replace(real, struct.pack("<I", 1000)))


# -- XML ----------------------------------------------------------------------------------------


def cut_xml(day: Path) -> None:
    """Sor.xml stops mid-element (a half-written export, zipped whole)."""
    data = read_member(day, XML_ZIP, XML)
    replace_member(day, XML_ZIP, XML, data[: int(len(data) * 0.6)])


SECRET = "TOP-SECRET-5f1c"


def xxe(day: Path) -> None:
    """An external entity naming a local file (``secret.txt`` beside the day folders, holding
    :data:`SECRET`), used as a unit's name."""
    secret = day.parent / "secret.txt"
    secret.write_text(SECRET)

    def edit(text: str) -> str:
        text = _prolog(text, f'<!DOCTYPE SorTree [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>')
        return text.replace("<EntityName>", "<EntityName>&xxe;", 1)

    edit_xml(day, edit)


def billion_laughs(day: Path) -> None:
    """Ten levels of ten-fold entity expansion (10^9 "lol"s) in a unit's name."""
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{(f"&lol{i - 1};" if i > 1 else "&lol;") * 10}">' for i in range(1, 10)
    )

    def edit(text: str) -> str:
        text = _prolog(text, f"<!DOCTYPE SorTree [{entities}]>")
        return text.replace("<EntityName>", "<EntityName>&lol9;", 1)

    edit_xml(day, edit)


def latin1_xml(day: Path) -> None:
    """Sor.xml re-encoded as ISO-8859-1 while it still declares UTF-8 (æøå become bad bytes)."""
    text = read_member(day, XML_ZIP, XML).decode("utf-8-sig")
    assert any(letter in text for letter in "æøåÆØÅ")
    replace_member(day, XML_ZIP, XML, text.encode("latin-1"))


def utf16_csv(day: Path) -> None:
    """LocationsCodes.csv exported as UTF-16 instead of UTF-8."""
    text = read_member(day, CSV_ZIP, GLNS).decode("utf-8-sig")
    replace_member(day, CSV_ZIP, GLNS, text.encode("utf-16"))


# -- content ------------------------------------------------------------------------------------


def header_only_capabilities(day: Path) -> None:
    """LocationsCodeEDITypeMap.csv with its header and no rows: a half-published export."""
    write_csv_lines(day, GLN_TYPES, csv_lines(day, GLN_TYPES)[:1])


def gln_owned_twice(day: Path) -> None:
    """A second unit carries the first unit's GLN as its own."""
    first, second = xml_glns(day)[:2]
    edit_xml(
        day,
        lambda text: text.replace(
            f"<EanLocationCode>{second}</EanLocationCode>",
            f"<EanLocationCode>{first}</EanLocationCode>",
            1,
        ),
    )


def gln_listed_twice_in_csv(day: Path) -> str:
    """LocationsCodes.csv lists a GLN that only it knows (no unit in Sor.xml carries it) twice,
    the second row contradicting the first: inactive, another VANS."""
    lines = csv_lines(day, GLNS)
    header = lines[0].split(";")
    in_xml = set(xml_glns(day))
    row = next(line for line in lines[1:] if line[:13] not in in_xml)
    fields = row.split(";")
    fields[header.index("NonActiveIndicator")] = "true"
    fields[header.index("CommunicationSupplier")] = "51000035003"
    assert fields != row.split(";")
    write_csv_lines(day, GLNS, [*lines, ";".join(fields)])
    return row[:13]


def unit_nested_in_itself(day: Path) -> None:
    """An organisational unit appears again as its own child: the only way nesting in Sor.xml
    can express a cycle (parents come from nesting, not from a parent field)."""

    def edit(text: str) -> str:
        match = re.search(r"<OrganizationalUnit>.*?</OrganizationalUnit>", text, re.S)
        assert match is not None
        record = match.group(0)
        child = f"<OrganizationalUnitEntity>{record}</OrganizationalUnitEntity>"
        return text[: match.end()] + child + text[match.end() :]

    edit_xml(day, edit)


def remove_half_the_glns(day: Path) -> list[str]:
    """Every second GLN gone from both files: its units keep no GLN, its rows are dropped."""
    lines = csv_lines(day, GLNS)
    every = sorted({line.split(";")[0] for line in lines[1:]} | set(xml_glns(day)))
    gone = every[::2]

    def edit(text: str) -> str:
        for gln in gone:
            text = re.sub(
                rf"<OptionalEanLocationCode>\s*{_ean_entity(gln)}\s*</OptionalEanLocationCode>",
                "<OptionalEanLocationCode><EntityInheritedIndicator>false"
                "</EntityInheritedIndicator></OptionalEanLocationCode>",
                text,
                flags=re.S,
            )
            text = re.sub(_ean_entity(gln), "", text, flags=re.S)
        return text

    edit_xml(day, edit)
    dropped = set(gone)
    for member in (GLNS, GLN_TYPES):
        rows = csv_lines(day, member)
        write_csv_lines(day, member, [rows[0]] + [r for r in rows[1:] if r[:13] not in dropped])
    return gone


def add_gln_with_bad_check_digit(day: Path) -> str:
    """A new GLN (only in the CSV files) whose 13th digit is not its GS1 check digit."""
    body = "579000099999"
    gln = body + str((gs1_check_digit(body) + 1) % 10)
    glns = csv_lines(day, GLNS)
    glns.append(gln + glns[1][13:])
    write_csv_lines(day, GLNS, glns)
    types = csv_lines(day, GLN_TYPES)
    types.append(gln + types[1][13:])
    write_csv_lines(day, GLN_TYPES, types)
    return gln
