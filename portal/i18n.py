"""Languages: which one a request speaks, its compiled catalogs, and locale-aware formatting of numbers, money,
percentages, dates and durations (the template filters).

The language of a request, first match wins: `?lang=` (the switcher on logged-out pages; it is remembered in a
cookie), the logged-in user's saved choice, that cookie, the browser's Accept-Language, English.
Dates are shown in the workspace's time zone.
"""
import logging
import os
import tempfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent, get_currency_symbol
from flask import Flask, current_app, has_request_context, request
from flask_babel import Babel, format_date, format_datetime, get_locale
from flask_babel import gettext as _
from flask_login import current_user

# The languages Leadpath speaks, each named in itself (the switcher shows these).
LANGUAGES = {"en": "English", "ru": "Русский", "uk": "Українська"}
LANGUAGE_COOKIE = "lang"
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600
CATALOG_DOMAIN = "messages"

babel = Babel()


def init_app(app: Flask) -> None:
    if app.config["BABEL_DEFAULT_LOCALE"] not in LANGUAGES:
        raise ValueError(f"DEFAULT_LANGUAGE must be one of {', '.join(LANGUAGES)}")
    compile_catalogs(translations_directory(app))
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.after_request(_remember_requested_language)
    app.context_processor(_language_context)
    for name, function in (("number", number), ("money", money), ("percent", percent),
                           ("datetime", local_datetime), ("date", local_date), ("duration", duration)):
        app.add_template_filter(function, name)


def translations_directory(app: Flask) -> Path:
    return Path(app.root_path) / app.config["BABEL_TRANSLATION_DIRECTORIES"]


def compile_catalogs(directory: Path) -> list[Path]:
    """Compile each <lang>/LC_MESSAGES/messages.po whose .mo is missing or older: the .po files are the source (in
    git); the .mo files are build output, made here so `pip install` + `flask demo` works on a fresh checkout.
    Written to a temporary file and renamed, so processes starting together never read half a file.
    Returns the catalogs compiled. A directory it cannot write to is logged, not fatal: those pages fall back
    to English."""
    compiled = []
    for po_path in sorted(directory.glob(f"*/LC_MESSAGES/{CATALOG_DOMAIN}.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parent.parent.name)
        try:
            handle, temporary = tempfile.mkstemp(dir=mo_path.parent, suffix=".mo.tmp")
        except OSError as error:  # a read-only code directory: the deploy compiles them (docs/translations.md)
            logging.getLogger(__name__).error("cannot compile %s (%s): its pages stay in English", po_path,
                                              error.__class__.__name__)
            continue
        try:
            with os.fdopen(handle, "wb") as mo_file:
                write_mo(mo_file, catalog)
            os.replace(temporary, mo_path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        compiled.append(mo_path)
    return compiled


def asked_language() -> str | None:
    """?lang= when it names a language. (A query string of raw non-UTF-8 bytes is refused with a 400 whose page
    is rendered too: it names none.)"""
    try:
        value = request.args.get("lang")
    except UnicodeDecodeError:
        return None
    return value if value in LANGUAGES else None


def requested_language() -> str | None:
    """A language named by the request itself: ?lang=, then the cookie the switcher left."""
    cookie = request.cookies.get(LANGUAGE_COOKIE)
    return asked_language() or (cookie if cookie in LANGUAGES else None)


def browser_language() -> str:
    return request.accept_languages.best_match(LANGUAGES) or default_language()


def default_language() -> str:
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def select_locale() -> str:
    if not has_request_context():  # a job or a command: messages it keeps are read later, in any language
        return default_language()
    asked = asked_language()
    if asked:
        return asked
    if current_user and current_user.is_authenticated and current_user.locale in LANGUAGES:
        return current_user.locale
    return requested_language() or browser_language()


def select_timezone() -> str:
    if has_request_context() and current_user and current_user.is_authenticated:
        return current_user.workspace.timezone
    return "UTC"


def _remember_requested_language(response):
    asked = asked_language()
    if asked and request.cookies.get(LANGUAGE_COOKIE) != asked:
        response.set_cookie(LANGUAGE_COOKIE, asked, max_age=LANGUAGE_COOKIE_SECONDS, samesite="Lax",
                            secure=current_app.config.get("SESSION_COOKIE_SECURE", False), httponly=True)
    return response


def _language_context() -> dict:
    return {"languages": LANGUAGES, "current_language": str(get_locale() or default_language()),
            "language_links": _language_links}


def _language_links() -> list[tuple[str, str, str]]:
    """(code, name, this page's address in that language) for the switcher."""
    try:
        arguments = request.args.to_dict()
    except UnicodeDecodeError:  # a refused query string: the links keep only the path
        arguments = {}
    return [(code, name, request.path + "?" + urlencode({**arguments, "lang": code}))
            for code, name in LANGUAGES.items()]


def _locale() -> Locale:
    return get_locale() or Locale.parse(default_language())


# --- Formatting: one set of filters, every figure on every page goes through them.

def number(value, digits: int = 0) -> str:
    """A count or plain figure with the locale's grouping: 10 440 (ru), 10,440 (en)."""
    if value is None:
        return "—"
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(Decimal(value), format=pattern, locale=_locale())


def money(value, currency: str | None = None) -> str:
    """An amount with its currency in the locale's way: 18 404 000 ₽ (ru), RUB 18,404,000 (en). Whole amounts
    show no decimals; others two. currency='' prints the number alone (the currency is in a column header)."""
    if value is None:
        return "—"
    if currency is None and current_user and current_user.is_authenticated:
        currency = current_user.workspace.currency
    amount = Decimal(value)
    whole = amount == amount.to_integral_value()
    if not currency:
        return number(amount, 0 if whole else 2)
    locale = _locale()
    pattern = locale.currency_formats["standard"].pattern.split(";")[0]
    if whole:
        pattern = pattern.replace("0.00", "0")
    # A currency shown by its letters (RUB in English) needs a space from the digits: "RUB 1,500", not "RUB1,500".
    symbol = get_currency_symbol(currency, locale)
    if symbol[-1:].isalpha():
        pattern = pattern.replace("¤#", "¤\xa0#")
    if symbol[:1].isalpha():
        pattern = pattern.replace("0¤", "0\xa0¤")
    return format_currency(amount, currency, format=pattern, locale=locale, currency_digits=False)


def percent(value, digits: int = 0, signed: bool = False) -> str:
    """A figure already in percent, in the locale's way: 12.5% (en), 12,5 % (ru). signed: +12% for a change."""
    if value is None:
        return "—"
    pattern = _locale().percent_formats[None].pattern.split(";")[0]
    if digits:
        pattern = pattern.replace("#,##0", "#,##0." + "0" * digits)
    if signed:
        pattern = f"+{pattern};-{pattern}"
    return format_percent(Decimal(value) / 100, format=pattern, locale=_locale())


def local_datetime(value: datetime | None, fmt: str = "medium_minutes") -> str:
    """A moment in the workspace's time zone. fmt: 'medium_minutes' (3 Dec 2026, 09:07), or a Babel format
    name ('short', 'medium' with seconds, 'long')."""
    if value is None:
        return "—"
    if fmt == "medium_minutes":
        locale = _locale()
        pattern = locale.datetime_formats["medium"].replace("{1}", locale.date_formats["medium"].pattern)
        return format_datetime(value, pattern.replace("{0}", locale.time_formats["short"].pattern))
    return format_datetime(value, fmt)


def local_date(value: date | None, fmt: str = "medium") -> str:
    """A calendar date (no time zone: a report day is already the workspace's)."""
    if value is None:
        return "—"
    return format_date(value, fmt)


def duration(seconds) -> str:
    """A human duration, largest two units: "3 d 4 h", "12 min"; "less than a minute"."""
    if seconds is None:
        return "—"
    minutes = int(seconds) // 60
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return _("%(days)s d %(hours)s h", days=days, hours=hours) if hours else _("%(days)s d", days=days)
    if hours:
        return _("%(hours)s h %(minutes)s min", hours=hours, minutes=minutes) if minutes else \
            _("%(hours)s h", hours=hours)
    return _("%(minutes)s min", minutes=minutes) if minutes else _("less than a minute")

