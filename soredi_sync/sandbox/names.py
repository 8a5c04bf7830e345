"""Danish geography, institutions and names the sandbox draws its synthetic register from.

Public facts (municipalities and the region they belong to, hospital names, common first and
last names, street names); no records or text are copied from SOR itself. Kept apart from the
generator so the data can grow without touching its logic.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Region:
    code: str  # SOR region code, 1081-1085
    name: str
    shak_prefix: str  # first two digits of the region's hospital SHAK codes (synthetic)


REGIONS: tuple[Region, ...] = (
    Region("1081", "Region Nordjylland", "80"),
    Region("1082", "Region Midtjylland", "66"),
    Region("1083", "Region Syddanmark", "42"),
    Region("1084", "Region Hovedstaden", "13"),
    Region("1085", "Region Sjælland", "38"),
)


@dataclass(frozen=True, slots=True)
class Municipality:
    name: str
    region_code: str
    postal_code: str
    town: str


def _m(region_code: str, rows: str) -> tuple[Municipality, ...]:
    out = []
    for row in rows.strip().splitlines():
        name, postal_code, town = (part.strip() for part in row.split("|"))
        out.append(Municipality(name, region_code, postal_code, town))
    return tuple(out)


# The 98 municipalities (2007 reform), each with one representative postal district.
MUNICIPALITIES: tuple[Municipality, ...] = (
    _m(
        "1084",
        """
        København|1550|København V
        Frederiksberg|2000|Frederiksberg
        Albertslund|2620|Albertslund
        Ballerup|2750|Ballerup
        Brøndby|2605|Brøndby
        Dragør|2791|Dragør
        Gentofte|2820|Gentofte
        Gladsaxe|2860|Søborg
        Glostrup|2600|Glostrup
        Herlev|2730|Herlev
        Hvidovre|2650|Hvidovre
        Høje-Taastrup|2630|Taastrup
        Ishøj|2635|Ishøj
        Lyngby-Taarbæk|2800|Kongens Lyngby
        Rødovre|2610|Rødovre
        Tårnby|2770|Kastrup
        Vallensbæk|2625|Vallensbæk
        Allerød|3450|Allerød
        Egedal|3660|Stenløse
        Fredensborg|3480|Fredensborg
        Frederikssund|3600|Frederikssund
        Furesø|3520|Farum
        Gribskov|3230|Græsted
        Halsnæs|3300|Frederiksværk
        Helsingør|3000|Helsingør
        Hillerød|3400|Hillerød
        Hørsholm|2970|Hørsholm
        Rudersdal|2840|Holte
        Bornholm|3700|Rønne
        """,
    )
    + _m(
        "1085",
        """
        Greve|2670|Greve
        Køge|4600|Køge
        Lejre|4320|Lejre
        Roskilde|4000|Roskilde
        Solrød|2680|Solrød Strand
        Faxe|4640|Faxe
        Guldborgsund|4800|Nykøbing F
        Holbæk|4300|Holbæk
        Kalundborg|4400|Kalundborg
        Lolland|4930|Maribo
        Næstved|4700|Næstved
        Odsherred|4550|Asnæs
        Ringsted|4100|Ringsted
        Slagelse|4200|Slagelse
        Sorø|4180|Sorø
        Stevns|4660|Store Heddinge
        Vordingborg|4760|Vordingborg
        """,
    )
    + _m(
        "1083",
        """
        Assens|5610|Assens
        Faaborg-Midtfyn|5600|Faaborg
        Kerteminde|5300|Kerteminde
        Langeland|5900|Rudkøbing
        Middelfart|5500|Middelfart
        Nordfyns|5400|Bogense
        Nyborg|5800|Nyborg
        Odense|5000|Odense C
        Svendborg|5700|Svendborg
        Ærø|5970|Ærøskøbing
        Billund|7190|Billund
        Esbjerg|6700|Esbjerg
        Fanø|6720|Fanø
        Fredericia|7000|Fredericia
        Haderslev|6100|Haderslev
        Kolding|6000|Kolding
        Sønderborg|6400|Sønderborg
        Tønder|6270|Tønder
        Varde|6800|Varde
        Vejen|6600|Vejen
        Vejle|7100|Vejle
        Aabenraa|6200|Aabenraa
        """,
    )
    + _m(
        "1082",
        """
        Favrskov|8370|Hadsten
        Hedensted|8722|Hedensted
        Horsens|8700|Horsens
        Norddjurs|8500|Grenaa
        Odder|8300|Odder
        Randers|8900|Randers C
        Samsø|8305|Samsø
        Silkeborg|8600|Silkeborg
        Skanderborg|8660|Skanderborg
        Syddjurs|8400|Ebeltoft
        Aarhus|8000|Aarhus C
        Herning|7400|Herning
        Holstebro|7500|Holstebro
        Ikast-Brande|7430|Ikast
        Lemvig|7620|Lemvig
        Ringkøbing-Skjern|6950|Ringkøbing
        Skive|7800|Skive
        Struer|7600|Struer
        Viborg|8800|Viborg
        """,
    )
    + _m(
        "1081",
        """
        Brønderslev|9700|Brønderslev
        Frederikshavn|9900|Frederikshavn
        Hjørring|9800|Hjørring
        Jammerbugt|9440|Aabybro
        Læsø|9940|Læsø
        Mariagerfjord|9500|Hobro
        Morsø|7900|Nykøbing M
        Rebild|9530|Støvring
        Thisted|7700|Thisted
        Vesthimmerlands|9600|Aars
        Aalborg|9000|Aalborg
        """,
    )
)

# Hospitals per region (the region's psychiatry is listed as a hospital-like institution).
HOSPITALS: dict[str, tuple[str, ...]] = {
    "1081": (
        "Aalborg Universitetshospital",
        "Regionshospital Nordjylland",
        "Psykiatrien Region Nordjylland",
    ),
    "1082": (
        "Aarhus Universitetshospital",
        "Regionshospitalet Gødstrup",
        "Regionshospitalet Randers",
        "Regionshospitalet Horsens",
        "Regionshospitalet Viborg",
        "Psykiatrien Region Midtjylland",
    ),
    "1083": (
        "Odense Universitetshospital",
        "Sygehus Lillebælt",
        "Sydvestjysk Sygehus",
        "Sygehus Sønderjylland",
        "Psykiatrien i Region Syddanmark",
    ),
    "1084": (
        "Rigshospitalet",
        "Bispebjerg og Frederiksberg Hospital",
        "Amager og Hvidovre Hospital",
        "Herlev og Gentofte Hospital",
        "Nordsjællands Hospital",
        "Bornholms Hospital",
        "Region Hovedstadens Psykiatri",
    ),
    "1085": (
        "Sjællands Universitetshospital",
        "Holbæk Sygehus",
        "Næstved, Slagelse og Ringsted Sygehuse",
        "Nykøbing F. Sygehus",
        "Psykiatrien Region Sjælland",
    ),
}

DEPARTMENTS: tuple[str, ...] = (
    "Akutmodtagelse",
    "Medicinsk afdeling",
    "Kardiologisk afdeling",
    "Lungemedicinsk afdeling",
    "Endokrinologisk afdeling",
    "Gastroenterologisk afdeling",
    "Nefrologisk afdeling",
    "Hæmatologisk afdeling",
    "Infektionsmedicinsk afdeling",
    "Geriatrisk afdeling",
    "Reumatologisk afdeling",
    "Neurologisk afdeling",
    "Onkologisk afdeling",
    "Kirurgisk afdeling",
    "Ortopædkirurgisk afdeling",
    "Urologisk afdeling",
    "Karkirurgisk afdeling",
    "Thoraxkirurgisk afdeling",
    "Neurokirurgisk afdeling",
    "Plastikkirurgisk afdeling",
    "Gynækologisk-obstetrisk afdeling",
    "Børne- og ungeafdeling",
    "Øre-næse-halsafdeling",
    "Øjenafdeling",
    "Dermatologisk afdeling",
    "Anæstesiologisk afdeling",
    "Radiologisk afdeling",
    "Klinisk biokemisk afdeling",
    "Klinisk mikrobiologisk afdeling",
    "Patologisk afdeling",
    "Klinisk fysiologi og nuklearmedicin",
    "Arbejdsmedicinsk klinik",
    "Palliativ enhed",
    "Fysio- og ergoterapi",
    "Klinisk genetisk afdeling",
    "Hjertemedicinsk ambulatorium",
    "Diabetescenter",
    "Smerteklinik",
    "Fertilitetsklinik",
    "Hospitalsapotek",
)

PSYCHIATRY_DEPARTMENTS: tuple[str, ...] = (
    "Psykiatrisk akutmodtagelse",
    "Afdeling for psykoser",
    "Afdeling for depression og angst",
    "Børne- og ungdomspsykiatri",
    "Retspsykiatrisk afdeling",
    "Distriktspsykiatri",
    "Gerontopsykiatri",
    "Psykiatrisk center",
)

SECTIONS: tuple[str, ...] = (
    "Sengeafsnit",
    "Ambulatorium",
    "Dagafsnit",
    "Sekretariat",
    "Forskningsenhed",
    "Modtageafsnit",
    "Klinik",
    "Team",
)

MUNICIPAL_INSTITUTIONS: tuple[str, ...] = (
    "Sundhed og Omsorg",
    "Hjemmeplejen",
    "Plejecentre",
    "Hjemmesygeplejen",
    "Sundhedscenter",
    "Genoptræning og Rehabilitering",
    "Akutfunktion",
    "Socialpsykiatri",
    "Kommunal Tandpleje",
    "Sundhedsplejen",
    "Jobcenter",
    "Handicap og Psykiatri",
)

DISTRICTS: tuple[str, ...] = ("Nord", "Syd", "Øst", "Vest", "Midt", "Centrum", "By", "Land")

CARE_HOME_NAMES: tuple[str, ...] = (
    "Solbakken",
    "Lindehøj",
    "Egebo",
    "Møllehaven",
    "Kastaniehaven",
    "Birkebo",
    "Rosenhaven",
    "Strandhaven",
    "Bøgely",
    "Åbrinken",
    "Engbo",
    "Skovly",
    "Fredly",
    "Toftegården",
    "Humlehaven",
    "Kildebakken",
    "Hybenhaven",
    "Ahornhaven",
    "Elmehøj",
    "Søbakken",
)

FIRST_NAMES: tuple[str, ...] = (
    "Anne",
    "Mette",
    "Hanne",
    "Susanne",
    "Lene",
    "Marianne",
    "Camilla",
    "Louise",
    "Charlotte",
    "Maria",
    "Helle",
    "Karen",
    "Pia",
    "Tina",
    "Sofie",
    "Ida",
    "Peter",
    "Jens",
    "Lars",
    "Michael",
    "Henrik",
    "Thomas",
    "Søren",
    "Christian",
    "Martin",
    "Jesper",
    "Niels",
    "Anders",
    "Morten",
    "Rasmus",
    "Mads",
    "Kasper",
    "Ole",
    "Bo",
    "Jakob",
    "Frederik",
)

LAST_NAMES: tuple[str, ...] = (
    "Jensen",
    "Nielsen",
    "Hansen",
    "Pedersen",
    "Andersen",
    "Christensen",
    "Larsen",
    "Sørensen",
    "Rasmussen",
    "Jørgensen",
    "Petersen",
    "Madsen",
    "Kristensen",
    "Olsen",
    "Thomsen",
    "Christiansen",
    "Poulsen",
    "Johansen",
    "Møller",
    "Mortensen",
    "Knudsen",
    "Jakobsen",
    "Mikkelsen",
    "Frederiksen",
    "Holm",
    "Lund",
    "Schmidt",
    "Bach",
    "Dahl",
    "Skov",
    "Østergaard",
    "Kjær",
    "Friis",
    "Bertelsen",
)

STREETS: tuple[str, ...] = (
    "Vestergade",
    "Østergade",
    "Nørregade",
    "Søndergade",
    "Algade",
    "Jernbanegade",
    "Storegade",
    "Kirkevej",
    "Skolevej",
    "Hovedgaden",
    "Stationsvej",
    "Torvet",
    "Bredgade",
    "Møllevej",
    "Parkvej",
    "Strandvejen",
    "Havnegade",
    "Bygaden",
    "Kongensgade",
    "Adelgade",
    "Sygehusvej",
    "Lindevej",
    "Engvej",
    "Ringvejen",
    "Banegårdspladsen",
)

PHARMACY_SUFFIXES: tuple[str, ...] = (
    "Apotek",
    "Løve Apotek",
    "Svane Apotek",
    "Hjorte Apotek",
    "Elefant Apotek",
    "Ørne Apotek",
    "Nye Apotek",
)

SPECIALTIES: tuple[str, ...] = (
    "Øjenlæge",
    "Hudlæge",
    "Øre-næse-halslæge",
    "Psykiater",
    "Gynækolog",
    "Reumatolog",
    "Ortopædkirurg",
    "Børnelæge",
    "Kardiolog",
    "Lungelæge",
)
