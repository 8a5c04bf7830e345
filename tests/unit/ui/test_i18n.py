"""The console's catalogs and formats: every ``*.po`` file of a language merged and compiled
in memory, Danish and English dates and numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from soredi_sync.ui import i18n

HEADER = """msgid ""
msgstr ""
"Language: da\\n"
"Content-Type: text/plain; charset=UTF-8\\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\\n"

"""


@pytest.fixture
def locale_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "da" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translations.cache_clear()
    yield folder
    i18n.translations.cache_clear()


def test_every_po_file_is_merged(locale_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    (locale_dir / "a.po").write_text(
        HEADER
        + 'msgid "Findings"\nmsgstr "Fund"\n\n'
        + 'msgid "%(n)s unit"\nmsgid_plural "%(n)s units"\nmsgstr[0] "%(n)s enhed"\n'
        + 'msgstr[1] "%(n)s enheder"\n\n'
        + 'msgctxt "menu"\nmsgid "Audit"\nmsgstr "Revision"\n',
        encoding="utf-8",
    )
    (locale_dir / "b.po").write_text(
        HEADER
        + 'msgid "Registry"\nmsgstr "Register"\n\n'
        + '#, fuzzy\nmsgid "Overview"\nmsgstr "Oversigt?"\n\n'
        + 'msgid "Untranslated"\nmsgstr ""\n\n'
        + 'msgid "Findings"\nmsgstr "Fundene"\n',
        encoding="utf-8",
    )
    danish = i18n.translations("da")
    assert danish.gettext("Findings") == "Fund"  # the first file wins ...
    assert "b.po translates 'Findings' again" in caplog.text  # ... and the clash is told
    assert danish.gettext("Registry") == "Register"
    assert danish.gettext("Overview") == "Overview"  # fuzzy: not used
    assert danish.gettext("Untranslated") == "Untranslated"
    assert danish.ngettext("%(n)s unit", "%(n)s units", 1) == "%(n)s enhed"
    assert danish.ngettext("%(n)s unit", "%(n)s units", 3) == "%(n)s enheder"
    assert danish.pgettext("menu", "Audit") == "Revision"
    assert i18n.translations("en").gettext("Findings") == "Findings"


def test_the_shipped_catalogs_compile_and_translate_the_frame() -> None:
    i18n.translations.cache_clear()
    danish = i18n.translations("da")
    assert danish.gettext("Sign in") == "Log ind"
    assert danish.gettext("Sign out") == "Log ud"
    placeholder = re.compile(r"%\((\w+)\)")
    for message in i18n.merged_catalog("da"):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        # a translation has the placeholders of its source: a lost or renamed one breaks the page
        wanted = set().union(*(placeholder.findall(i) for i in ids))
        for text in strings:
            assert set(placeholder.findall(text)) <= wanted, (message.id, text)
            if len(ids) == 1:  # a plural's "one" form may say the number in words
                assert set(placeholder.findall(text)) == wanted, (message.id, text)


def test_templates_translate_in_the_chosen_language() -> None:
    source = '{{ _("Sign out") }} {{ _("Signed in as %(name)s", name="<b>") }}'
    assert i18n.environment("da").from_string(source).render() == (
        "Log ud Logget ind som &lt;b&gt;"
    )
    assert i18n.environment("en").from_string(source).render() == (
        "Sign out Signed in as &lt;b&gt;"
    )


def test_numbers_and_dates_in_danish_and_english() -> None:
    da, en = i18n.formatters("da"), i18n.formatters("en")
    assert da["fmt_number"](1234567.5) == "1.234.567,5"
    assert en["fmt_number"](1234567.5) == "1,234,567.5"
    assert da["fmt_number"](2.0, 1) == "2,0" and en["fmt_number"](1234, 0) == "1,234"
    assert da["fmt_percent"](0.256) == "25,6\u00a0%"
    assert da["fmt_date"](date(2025, 1, 5)) == "5. jan. 2025"
    assert en["fmt_date"](date(2025, 1, 5)) == "5 Jan 2025"
    # shown in Copenhagen time: 23:30 UTC on 31 Dec is 00:30 on 1 Jan (winter, UTC+1)
    late = datetime(2024, 12, 31, 23, 30, tzinfo=UTC)
    assert da["fmt_datetime"](late) == "1. jan. 2025 00:30"
    assert da["fmt_date"](late) == "1. jan. 2025"
    assert en["fmt_datetime"](datetime(2025, 7, 1, 10, 0)) == "1 Jul 2025 12:00"  # naive: UTC
    for formatter in (*da.values(), *en.values()):
        assert formatter(None) == "–"
