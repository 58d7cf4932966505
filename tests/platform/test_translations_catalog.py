"""Every string marked for translation (templates, flashes, form labels and errors, error pages, CSV headers) is
translated in every catalog: extracted with Babel's extractor exactly as `pybabel extract` does
(docs/translations.md), then compared with each portal/translations/<lang>/LC_MESSAGES/messages.po."""
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "portal" / "translations"
LANGUAGES = ("ru", "uk")
# The same keywords as the -k options of `pybabel extract` in docs/translations.md.
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "_p": ((1, "c"), 2), "lazy_pgettext": ((1, "c"), 2)}


def extracted() -> dict[tuple[str | None, str], str]:
    """(context, msgid) → where it is used, for every string the code marks."""
    with (ROOT / "portal" / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found = {}
    for filename, line, message, _comments, context in extract_from_dir(ROOT, method_map, options_map,
                                                                        keywords=KEYWORDS):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault((context, msgid), f"{filename}:{line}")
    return found


@pytest.fixture(scope="module")
def marked():
    return extracted()


def test_the_extraction_finds_the_portal_strings_and_skips_the_sandbox(marked):
    assert (None, "Log in") in marked and (None, "Please log in to continue.") in marked
    assert ("CSV column", "spend") in marked
    assert not any(where.startswith("portal/sandbox/") for where in marked.values())
    assert len(marked) > 400


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_string_is_translated(marked, language):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as po_file:
        catalog = read_po(po_file, locale=language)
    entries = {(message.context, message.id if isinstance(message.id, str) else message.id[0]): message
               for message in catalog if message.id}
    missing = {key: where for key, where in marked.items() if key not in entries}
    assert not missing, f"not in {language}/messages.po (update the catalogs, docs/translations.md): {missing}"
    untranslated = [key for key, message in entries.items() if key in marked and not (
        message.string if isinstance(message.string, str) else all(message.string))]
    assert not untranslated, f"empty msgstr in {language}: {untranslated}"
    fuzzy = [key for key, message in entries.items() if message.fuzzy]
    assert not fuzzy, f"fuzzy in {language}: {fuzzy}"
    for key, message in entries.items():  # a placeholder lost or misspelt fails at render time, not here
        if key in marked and isinstance(message.string, str):
            assert sorted(message.python_format and _placeholders(key[1]) or []) == \
                sorted(_placeholders(message.string) if message.python_format else []), (language, key)


def _placeholders(text: str) -> list[str]:
    return re.findall(r"%\((\w+)\)s", text)


# Words that are the same in every language: product names and abbreviations.
UNTRANSLATED_WORDS = {"amoCRM", "Leadpath", "ROI", "HTTP", "CPL", "CPA", "CSV", "gclid", "yclid", "fbclid"}
TRANSLATABLE_ATTRIBUTES = re.compile(r'\b(?:placeholder|aria-label|title|alt|data-confirm|data-message|data-copied)'
                                     r'="([^"]*)"')


def unmarked_text(source: str) -> list[str]:
    """Text of a template that a reader sees but that is not inside {{ _(...) }} (or another expression)."""
    source = re.sub(r"{#.*?#}", " ", source, flags=re.S)
    source = re.sub(r"<(script|style|code)\b.*?</\1>", " ", source, flags=re.S)
    source = re.sub(r"<textarea[^>]*readonly[^>]*>.*?</textarea>", " ", source, flags=re.S)  # code to copy
    source = re.sub(r"{{.*?}}|{%.*?%}", " ", source, flags=re.S)
    found = [value for value in TRANSLATABLE_ATTRIBUTES.findall(source) if re.search(r"[^\W\d_]{2,}", value)]
    for text in re.sub(r"<[^>]*>", "\n", source).split("\n"):
        words = [word for word in re.findall(r"[^\W\d_]{2,}", re.sub(r"&\w+;", " ", text))
                 if word not in UNTRANSLATED_WORDS]
        if words:
            found.append(text.strip())
    return found


def test_templates_show_no_text_outside_the_catalog():
    """A template string not wrapped in _() would never reach a catalog: caught here, with its file."""
    templates = [path for path in (ROOT / "templates").rglob("*.html")]
    assert len(templates) > 20
    unmarked = {str(path.relative_to(ROOT)): text for path in templates if (text := unmarked_text(path.read_text()))}
    assert not unmarked, f"wrap these in {{{{ _('…') }}}}: {unmarked}"
