"""The sandbox's fixed tables: identifiers, code values, systems, type pools and profiles.

Everything here is data or a pure helper; :class:`~soredi_sync.sandbox.world.World` and its
steps (:mod:`~soredi_sync.sandbox.build`, :mod:`~soredi_sync.sandbox.churn`, ...) draw from it.
Codes follow the shape of real SOR values (SNOMED CT style identifiers with a Verhoeff check
digit); names of systems and vendors follow MedCom's public vendor overview, while the codes,
shares and pools are the sandbox's own assumptions.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

BASE_DATE = date(2026, 11, 2)  # day 0: a Monday in the last months of financed conversion
# Real test addresses named by MedCom's working group; present in every profile.
REFERENCE_GLNS = ("5790002759994", "5790002621635", "5790000121786", "5790000120314")
FHIR_START = date(2025, 5, 31)  # CareCommunication went live


def weighted(rng: random.Random, options: Sequence[tuple[str, float]]) -> str:
    """One of ``options`` (value, weight), drawn by weight."""
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def past_date(rng: random.Random, start: date, end: date) -> date:
    """A day from ``start`` to ``end`` (``start`` when ``end`` is earlier)."""
    span = (end - start).days
    return start + timedelta(days=rng.randint(0, max(span, 0)))


# --- identifiers -------------------------------------------------------------------------------

_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_VERHOEFF_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def verhoeff_check_digit(body: str) -> str:
    """The Verhoeff check digit SNOMED CT identifiers (and so SOR-IDs) end with."""
    check = 0
    for position, char in enumerate(reversed(body)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[(position + 1) % 8][int(char)]]
    return str(_VERHOEFF_INV[check])


def sctid(item: int, namespace: str, partition: str = "00") -> str:
    """A SNOMED-extension style identifier: item, 7-digit namespace, partition, check digit.

    The real SOR-IDs (namespace ``1000016``), communication suppliers (``1000035``), system
    types (``1000045``) and system suppliers (``1000055``) all have this shape.
    """
    body = f"{item}{namespace}{partition}"
    return body + verhoeff_check_digit(body)


SOR_NAMESPACE = "1000016"

# VANS (communication suppliers) and the share of the market the sandbox gives them.
VANS_KMD = "41000035001"
VANS_MULTIMED = "81000035007"
VANS_TRUECOMMERCE = "51000035003"
VANS_NAMES = {
    VANS_KMD: "KMD",
    VANS_MULTIMED: "DataGruppen MultiMed",
    VANS_TRUECOMMERCE: "TrueCommerce",
}

# Type codes (SNOMED CT style). The international hospital/pharmacy/general-practice concepts
# and two unit types occur in real SOR records; the rest are synthetic extension codes.
_T5 = "1000005"
TYPE_CODES: dict[str, str] = {
    "owner:private": "550891000005100",
    "owner:region": sctid(55090, _T5, "10"),
    "owner:municipality": sctid(55092, _T5, "10"),
    "owner:organisation": sctid(55093, _T5, "10"),
    "institution:hospital": "22232009",
    "institution:pharmacy": "264372000",
    "institution:gp": "394761003",
    "institution:specialist": sctid(55101, _T5, "10"),
    "institution:dentist": sctid(55102, _T5, "10"),
    "institution:physio": sctid(55103, _T5, "10"),
    "institution:chiro": sctid(55104, _T5, "10"),
    "institution:psychologist": sctid(55105, _T5, "10"),
    "institution:podiatrist": sctid(55106, _T5, "10"),
    "institution:municipal": sctid(55107, _T5, "10"),
    "institution:region": sctid(55108, _T5, "10"),
    "institution:clinic": sctid(55109, _T5, "10"),
    "unit:department": "550811000005108",
    "unit:section": "550851000005109",
    "unit:team": sctid(55086, _T5, "10"),
    "unit:practice": sctid(55087, _T5, "10"),
    "unit:care_home": sctid(55088, _T5, "10"),
    "unit:home_care": sctid(55094, _T5, "10"),
    "unit:municipal": sctid(55095, _T5, "10"),
    "unit:pharmacy": sctid(55096, _T5, "10"),
}

# --- systems -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class System:
    """An IT system that receives messages for a GLN, as SOR records it (supplier + type code).

    ``legacy`` is the syntax its non-FHIR types use; ``initial_fhir`` the share of its GLNs that
    advertise CareCommunication on day 0 and ``daily_fhir`` the share of the remaining legacy ones
    that switch each night (0 for systems not certified for it).
    """

    key: str
    name: str
    vendor: str
    supplier_code: str
    type_code: str
    legacy: str  # "edifact" | "oioxml"
    vans: tuple[tuple[str, float], ...]
    initial_fhir: float
    daily_fhir: float
    certified_fhir: bool


def _system(
    index: int,
    key: str,
    name: str,
    vendor: str,
    vendor_index: int,
    legacy: str,
    vans: tuple[tuple[str, float], ...],
    initial_fhir: float,
    daily_fhir: float,
) -> System:
    return System(
        key=key,
        name=name,
        vendor=vendor,
        supplier_code=sctid(60 + vendor_index, "1000055"),
        type_code=sctid(150 + index, "1000045"),
        legacy=legacy,
        vans=vans,
        initial_fhir=initial_fhir,
        daily_fhir=daily_fhir,
        certified_fhir=initial_fhir > 0 or daily_fhir > 0,
    )


_K, _M, _T = VANS_KMD, VANS_MULTIMED, VANS_TRUECOMMERCE
# Names and certification status follow MedCom's vendor overview (April 2025); supplier and
# system-type codes are synthetic. Shares are the sandbox's own assumptions.
# fmt: off
SYSTEMS: dict[str, System] = {
    s.key: s
    for s in (
        _system(0, "clinea", "EG Clinea", "EG Denmark", 0, "edifact", ((_K, 5), (_T, 3), (_M, 2)), 0.30, 0.05),  # noqa: E501
        _system(1, "winplc", "EG WinPLC", "EG Denmark", 0, "edifact", ((_K, 6), (_T, 4)), 0.25, 0.05),  # noqa: E501
        _system(2, "multimedweb", "MultiMedWEB", "DataGruppen MultiMed", 1, "edifact", ((_M, 1),), 0.35, 0.06),  # noqa: E501
        _system(3, "novax", "Novax", "Novax", 2, "edifact", ((_T, 6), (_K, 4)), 0.20, 0.05),
        _system(4, "xmo", "XMO", "CompuGroup", 3, "edifact", ((_T, 5), (_K, 5)), 0.0, 0.0),
        _system(5, "vena", "VENA", "VENA", 4, "edifact", ((_M, 1),), 0.90, 0.10),
        _system(6, "ediportal", "EDI Portalen", "Nasure", 5, "edifact", ((_M, 1),), 0.20, 0.04),
        _system(7, "cura", "Columna Cura", "Systematic", 6, "oioxml", ((_K, 1),), 0.50, 0.05),
        _system(8, "modulus", "Modulus", "Netcompany", 7, "oioxml", ((_K, 5), (_M, 5)), 0.20, 0.04),  # noqa: E501
        _system(9, "sensum", "EG Sensum", "EG Denmark", 0, "oioxml", ((_T, 6), (_K, 4)), 0.20, 0.04),  # noqa: E501
        _system(10, "nexus", "KMD Nexus", "KMD", 8, "oioxml", ((_K, 1),), 0.10, 0.03),
        _system(11, "pharmanet", "Pharmanet", "DanPharm", 9, "edifact", ((_K, 1),), 0.30, 0.03),
        _system(12, "bosoft", "Bosoft", "CITA", 10, "edifact", ((_T, 1),), 0.30, 0.03),
        _system(13, "cis", "Columna CIS", "Systematic", 6, "oioxml", ((_T, 5), (_K, 5)), 0.15, 0.03),  # noqa: E501
        _system(14, "sp", "Sundhedsplatformen", "Epic", 11, "oioxml", ((_K, 1),), 0.10, 0.03),
    )
}
# fmt: on

# Which systems each kind of unit uses, with weights.
KIND_SYSTEMS: dict[str, tuple[tuple[str, float], ...]] = {
    "gp": (("clinea", 30), ("winplc", 15), ("multimedweb", 35), ("novax", 12), ("xmo", 8)),
    "specialist": (("clinea", 30), ("multimedweb", 30), ("novax", 25), ("xmo", 15)),
    "dentist": (("ediportal", 60), ("novax", 25), ("clinea", 15)),
    "physio": (("clinea", 40), ("novax", 40), ("multimedweb", 20)),
    "chiro": (("clinea", 50), ("novax", 50)),
    "psychologist": (("clinea", 40), ("novax", 30), ("multimedweb", 30)),
    "podiatrist": (("clinea", 50), ("novax", 50)),
    "pharmacy": (("pharmanet", 70), ("bosoft", 30)),
    "municipal": (("cura", 35), ("nexus", 40), ("sensum", 15), ("modulus", 10)),
}
REGION_SYSTEM = {"1081": "cis", "1082": "cis", "1083": "cis", "1084": "sp", "1085": "sp"}

# Who maintains a GLN's SOR-EDI entry (EdiAdministrator). [assumed] numbering.
EDI_ADMINISTRATORS: dict[str, str] = {
    "medcom": "100",
    "1081": "101",
    "1082": "102",
    "1083": "103",
    "1084": "104",
    "1085": "105",
}


def vendor_administrator(system: System) -> str:
    return str(110 + int(system.supplier_code[:-10]) - 60)


# --- message types per kind ----------------------------------------------------------------------

# Primary pools are drawn first; a GLN that needs more types takes them from the secondary pool.
TYPE_POOLS: dict[str, tuple[Sequence[str], Sequence[str], tuple[int, int]]] = {
    "gp": (
        (
            "DIS01 DIS02 DIS03 DIS05 DIS06 DIS07 DIS08 DIS13 DIS14 DIS17 DIS20 DIS90 REF01 REF02 "
            "REF06 REF07 REF08 REF10 REF12 REQ01 REQ03 RPT01 RPT01F RPT01P RPT02 RPT03 RPT04 RPT07 "
            "RUC01 RUC08 PRE60 BIN02 CTL01"
        ).split(),
        (
            "XDIS01 XDIS02 XDIS03 XDIS05 XDIS07 XDIS13 XDIS14 XDIS15 XDIS16 XDIS17 XDIS18 XDIS19 "
            "XDIS20 XDIS21 XREF01 XREF02 XREF06 XRPT01 XRPT03 XRPT04 XPRE60 XBIN02 XCTL01 XRPT05"
        ).split(),
        (25, 60),
    ),
    "specialist": (
        (
            "DIS07 REF06 REF01 REF02 RPT01 RPT02 RPT03 RPT04 REQ01 REQ03 RUC02 DIS01 DIS02 DIS13 "
            "BIN02 CTL01 PRE60"
        ).split(),
        "XDIS07 XREF06 XRPT01 XRPT03 XRPT04 XDIS01 XDIS02 XREF01 XREQ01 XBIN02 XCTL01".split(),
        (15, 40),
    ),
    "dentist": (
        "RUC03 REF01 REF06 DIS07 BIN02 CTL01 RPT01 RPT04 REQ03".split(),
        "XREF06 XREF01 XDIS07 XBIN02 XCTL01 PRE60".split(),
        (6, 16),
    ),
    "physio": (
        "DIS08 RUC04 REF07 REF08 BIN02 CTL01 REF06".split(),
        "XDIS08 XREF07 XBIN02 XCTL01 XREF06 XDIS15".split(),
        (6, 16),
    ),
    "chiro": ("DIS09 RUC06 REF08 CTL01 BIN02".split(), "XCTL01 XBIN02".split(), (5, 10)),
    "psychologist": (
        "DIS10 RUC10 REF10 CTL01 BIN02".split(),
        "XCTL01 XBIN02 REF06 XREF06".split(),
        (5, 12),
    ),
    "podiatrist": ("RUC11 REF12 CTL01 BIN02".split(), "XCTL01 XBIN02".split(), (5, 10)),
    "pharmacy": (
        "PRE60 XPRE60 RUC05 CTL01 XCTL01 REQ01".split(),
        "XBIN02 BIN02 XRPT01 RPT01".split(),
        (6, 14),
    ),
    "municipal": (
        (
            "XDIS15 XDIS16 XDIS17 XDIS18 XDIS19 XDIS20 XDIS21 XDIS22 XREF15 XREF22 XDIS01 XDIS02 "
            "FSIII GGOP XBIN02 XCTL01 XRPT01 XPRE60 XDIS14 XDIS08"
        ).split(),
        (
            "DIS20 DIS17 DIS14 DIS01 DIS02 DIS03 DIS08 REF01 REF06 REF07 RPT01 RPT02 RPT03 XDIS03 "
            "XDIS05 XDIS06 XDIS07 XDIS13 XREF01 XREF02 XREF06 XRPT03 XRPT04 XRPT05 XRPT06 XDAO01 "
            "XREQ01 BIN02 CTL01"
        ).split(),
        (14, 45),
    ),
    "hospital": (
        (
            "XDIS01 XDIS02 XDIS03 XDIS05 XDIS06 XDIS07 XDIS08 XDIS13 XDIS14 XDIS15 XDIS16 XDIS17 "
            "XDIS18 XDIS19 XDIS20 XDIS21 XDIS22 XDIS32 XREF01 XREF02 XREF06 XREF07 XREF15 XREF22 "
            "XRPT01 XRPT03 XRPT04 XRPT05 XRPT06 XRPT07 XREQ01 XREQ03 XBIN02 XCTL01 XPRE60 XDAO01 "
            "GGOP"
        ).split(),
        "REF01 REF02 REF06 DIS01 DIS20 RPT01 RPT02 REQ01 DIS02 DIS14 BIN02 CTL01".split(),
        (20, 60),
    ),
    "region": ("XDIS15 XREF15 XBIN02 XCTL01".split(), "XDIS01 XREF01".split(), (5, 10)),
}


# --- profiles ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    """How big a profile is. Counts are per region/municipality/hospital where so named."""

    name: str
    municipalities: int  # how many of the 98 (Aalborg always included)
    hospitals_per_region: int
    departments: tuple[int, int]
    sections: tuple[int, int]
    team_share: float  # share of hospital sections with teams under them
    municipal_institutions: int
    municipal_units: tuple[int, int]
    municipal_teams: tuple[int, int]
    practices: Mapping[str, int]
    planted: int  # instances of each planted defect
    csv_only_glns: int
    churn: tuple[int, int]  # per day and per kind of change
    inactive_share: float  # practice GLNs that are inactive and carry no types (not a defect)
    gln_step: int = 30
    description: str = ""


PROFILES: dict[str, ProfileSpec] = {
    "tiny": ProfileSpec(
        name="tiny",
        municipalities=6,
        hospitals_per_region=1,
        departments=(3, 5),
        sections=(1, 2),
        team_share=0.3,
        municipal_institutions=2,
        municipal_units=(2, 4),
        municipal_teams=(0, 1),
        practices={
            "gp": 15,
            "specialist": 5,
            "dentist": 5,
            "physio": 4,
            "chiro": 1,
            "psychologist": 3,
            "podiatrist": 2,
            "pharmacy": 3,
        },
        planted=2,
        csv_only_glns=2,
        churn=(1, 2),
        inactive_share=0.02,
        description="~300 units, ~100 GLNs; 6 municipalities, one hospital per region",
    ),
    "small": ProfileSpec(
        name="small",
        municipalities=98,
        hospitals_per_region=2,
        departments=(6, 10),
        sections=(1, 3),
        team_share=0.3,
        municipal_institutions=3,
        municipal_units=(2, 4),
        municipal_teams=(0, 1),
        practices={
            "gp": 110,
            "specialist": 40,
            "dentist": 50,
            "physio": 40,
            "chiro": 10,
            "psychologist": 50,
            "podiatrist": 20,
            "pharmacy": 25,
        },
        planted=3,
        csv_only_glns=10,
        churn=(2, 5),
        inactive_share=0.01,
        description="~3,000 units, ~1,000 GLNs; all 98 municipalities",
    ),
    "national": ProfileSpec(
        name="national",
        municipalities=98,
        hospitals_per_region=7,
        departments=(24, 36),
        sections=(3, 5),
        team_share=0.4,
        municipal_institutions=12,
        municipal_units=(6, 10),
        municipal_teams=(0, 2),
        practices={
            "gp": 2100,
            "specialist": 1300,
            "dentist": 2600,
            "physio": 2800,
            "chiro": 350,
            "psychologist": 3600,
            "podiatrist": 1400,
            "pharmacy": 550,
        },
        planted=5,
        csv_only_glns=150,
        churn=(15, 40),
        inactive_share=0.01,
        gln_step=15,
        description="national scale: >= 60,000 units, >= 20,000 GLNs, >= 400,000 capabilities",
    ),
}
