"""The console's languages: Danish (the default) from the gettext catalogs in
``locale/da/LC_MESSAGES/*.po``, merged and compiled in memory once per process (no build step);
English is the source strings. Dates, times and numbers in each language's format (Babel)."""

from __future__ import annotations

import gettext
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, StrictUndefined

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
LOCALE_DIR = HERE / "locale"
TEMPLATE_DIR = HERE / "templates"
# Babel's locale of each console language (English as written in Europe: 5 Jan 2025).
BABEL_LOCALES = {"da": "da_DK", "en": "en_GB"}
TIMEZONE = ZoneInfo("Europe/Copenhagen")
MISSING = "–"  # what a formatter shows for None


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translated later"
    """Marks ``message`` for translation where it is shown, not where it is written."""
    return message


def merged_catalog(lang: str) -> Catalog:
    """Every ``*.po`` file of ``lang`` as one catalog; untranslated and fuzzy entries left out
    (they show in English). The same message translated twice: the first file (by name) wins,
    and the conflict is logged."""
    catalog = Catalog(locale=lang, domain="console")
    for path in sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as po:
            part = read_po(po, locale=lang)
        for message in part:
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if not message.id or message.fuzzy or not all(strings):
                continue
            known = catalog.get(message.id, context=message.context)
            if known is not None:
                if known.string != message.string:
                    logger.warning(
                        "%s translates %r again, differently; the first translation is kept",
                        path.name,
                        message.id,
                    )
                continue
            catalog[message.id] = message
    return catalog


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of ``lang`` (``NullTranslations``: the English source strings)."""
    if lang == "en":
        return gettext.NullTranslations()
    buffer = BytesIO()
    write_mo(buffer, merged_catalog(lang))
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@cache
def environment(lang: str) -> Environment:
    """The templates, with ``_``/``gettext``/``ngettext``/``pgettext`` of ``lang`` (Jinja's
    "newstyle" gettext: ``_("%(n)s units", n=3)``, autoescaped, so a literal percent sign is
    written ``%%``)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


def formatters(lang: str) -> dict[str, Callable[..., str]]:
    """``fmt_date``, ``fmt_datetime``, ``fmt_number`` (and ``fmt_percent``) in ``lang``'s
    formats; ``None`` is shown as a dash. Times are shown in Copenhagen time; a naive datetime
    is taken as UTC."""
    locale = BABEL_LOCALES[lang]

    def fmt_date(value: date | datetime | None, format: str = "medium") -> str:
        if value is None:
            return MISSING
        if isinstance(value, datetime):
            value = _local(value).date()
        return format_date(value, format=format, locale=locale)

    def fmt_datetime(value: datetime | None, format: str = "medium") -> str:
        if value is None:
            return MISSING
        day = format_date(_local(value).date(), format=format, locale=locale)
        clock = format_datetime(_local(value), format="HH:mm", locale=locale)
        return f"{day} {clock}"

    def fmt_number(value: int | float | Decimal | None, digits: int | None = None) -> str:
        if value is None:
            return MISSING
        if digits is None:
            return format_decimal(value, locale=locale)
        pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
        return format_decimal(value, format=pattern, locale=locale)

    def fmt_percent(ratio: float | None, digits: int = 1) -> str:
        """``ratio`` (0.25) as a percentage (25,0 %)."""
        if ratio is None:
            return MISSING
        return f"{fmt_number(ratio * 100, digits)}\u00a0%"

    return {
        "fmt_date": fmt_date,
        "fmt_datetime": fmt_datetime,
        "fmt_number": fmt_number,
        "fmt_percent": fmt_percent,
    }


def _local(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(TIMEZONE)


def gettext_for(lang: str) -> Callable[[str], str]:
    """``_`` for Python code (a message built in a page module)."""
    return translations(lang).gettext


__all__ = [
    "BABEL_LOCALES",
    "N_",
    "environment",
    "formatters",
    "gettext_for",
    "merged_catalog",
    "translations",
]
