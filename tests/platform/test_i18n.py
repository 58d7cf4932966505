"""Languages: pages, flashes, form labels and WTForms' own errors in Russian, Ukrainian and English; the language
from Accept-Language, then the user's saved choice; the switcher of logged-out pages; numbers, money and dates in
the reader's locale; the catalogs compiled from the .po files; and the snippet's form in the page's language."""
import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from fixtures.reports import add_lead, add_sale
from fixtures.support import PASSWORD, log_in, post_form, workspace_of

from portal.extensions import db
from portal.i18n import compile_catalogs, local_date, local_datetime, money, number, percent, translations_directory
from portal.models import User

RU = {"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}
UK = {"Accept-Language": "uk-UA,uk;q=0.9"}


def test_logged_out_page_follows_accept_language(client):
    html = client.get("/login", headers=RU).get_data(as_text=True)
    assert '<html lang="ru">' in html
    assert "<h1>Войти</h1>" in html and "Запомнить меня" in html and "Создайте рабочее пространство" in html
    html = client.get("/login", headers=UK).get_data(as_text=True)
    assert '<html lang="uk">' in html and "<h1>Увійти</h1>" in html
    html = client.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9"}).get_data(as_text=True)
    assert '<html lang="en">' in html and "<h1>Log in</h1>" in html


def test_switcher_sets_a_cookie_that_outlasts_the_browser_language(client):
    response = client.get("/login?lang=uk", headers=RU)
    assert "<h1>Увійти</h1>" in response.get_data(as_text=True)
    assert "lang=uk" in response.headers["Set-Cookie"]
    html = client.get("/signup", headers=RU).get_data(as_text=True)
    assert "Створіть робочий простір" in html
    assert 'href="/signup?lang=en"' in html  # the switcher keeps the page, changes the language
    assert "<h1>Log in</h1>" in client.get("/login?lang=en", headers=RU).get_data(as_text=True)
    assert "<h1>Log in</h1>" in client.get("/login?lang=xx", headers=RU).get_data(as_text=True)  # the cookie's


def test_wtforms_own_messages_and_our_form_errors_are_translated(client):
    html = post_form(client, "/signup", {"workspace_name": "", "name": "Ann", "email": "not-an-address",
                                         "password": "short", "confirm": "other"}, headers=RU).get_data(as_text=True)
    assert "Обязательное поле." in html  # WTForms' catalog (DataRequired)
    assert "Неверный адрес электронной почты." in html  # WTForms' catalog (Email)
    assert "Используйте от 8 до 128 символов." in html and "Пароли не совпадают." in html  # ours


def test_a_user_choice_wins_over_the_browser(app, owner, owner_client):
    assert "<h1>Сводка</h1>" in owner_client.get("/", headers=RU).get_data(as_text=True)
    page = owner_client.get("/settings/language", headers=RU).get_data(as_text=True)
    assert "Как в браузере (сейчас: Русский)" in page
    response = post_form(owner_client, "/settings/language", {"locale": "uk"}, headers=RU,
                         page="/settings/language")
    assert response.status_code == 302
    html = owner_client.get("/settings/language", headers=RU, follow_redirects=True).get_data(as_text=True)
    assert '<html lang="uk">' in html and "Мову збережено." in html
    assert "<h1>Зведення</h1>" in owner_client.get("/", headers=RU).get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, owner).locale == "uk"
    post_form(owner_client, "/settings/language", {"locale": ""}, headers=RU, page="/settings/language")
    assert "<h1>Сводка</h1>" in owner_client.get("/", headers=RU).get_data(as_text=True)


def test_a_member_may_choose_a_language(app, make_user, owner):
    from fixtures.support import log_in

    member = make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    client = app.test_client()
    log_in(client, "member@example.com")
    assert post_form(client, "/settings/language", {"locale": "ru"}, page="/settings/language").status_code == 302
    with app.app_context():
        assert db.session.get(User, member).locale == "ru"
    assert post_form(client, "/settings/language", {"locale": "fr"}, page="/settings/language").status_code == 400


def test_flash_and_error_pages_in_russian(owner_client):
    response = owner_client.get("/no-such-page", headers=RU)
    assert response.status_code == 404 and "Страница не найдена" in response.get_data(as_text=True)
    response = owner_client.get("/leads?after=not-a-cursor", headers=UK)  # a message raised with abort()
    assert response.status_code == 400
    assert "Це посилання на сторінку більше не діє" in response.get_data(as_text=True)
    api = owner_client.get("/api/no-such-thing", headers=RU)  # machines read English
    assert api.status_code == 404 and api.get_json()["error"] == "not_found"
    assert "The requested URL was not found" in api.get_json()["message"]
    html = owner_client.post("/logout", data={"csrf_token": _token(owner_client, "/")}, headers=RU,
                             follow_redirects=True).get_data(as_text=True)
    assert "Вы вышли из Leadpath." in html



def test_account_page_and_password_rules_in_ukrainian(owner_client):
    page = owner_client.get("/settings/account", headers=UK).get_data(as_text=True)
    assert "<h2>Ваш акаунт</h2>" in page and "Де ви увійшли" in page and "Вийти на всіх інших пристроях" in page
    assert "(цей браузер)" in page and "власник" in page  # the role by its label, not "owner"
    short = post_form(owner_client, "/settings/account/password", {
        "current_password": PASSWORD, "password": "short", "confirm": "short"}, page="/settings/account", headers=UK)
    assert short.status_code == 400 and "Використайте від 8 до 128 символів." in short.get_data(as_text=True)
    wrong = post_form(owner_client, "/settings/account/password", {
        "current_password": "not the password", "password": "a long new passphrase", "confirm":
        "a long new passphrase"}, page="/settings/account", headers=UK).get_data(as_text=True)
    assert "Поточний пароль неправильний." in wrong
    common = post_form(owner_client, "/settings/account/password", {
        "current_password": PASSWORD, "password": "password1", "confirm": "password1"}, page="/settings/account",
        headers=RU).get_data(as_text=True)
    assert "Этот пароль слишком распространён" in common


def test_the_throttle_page_and_a_role_refusal_in_russian(app, owner, make_user, client):
    for _attempt in range(5):
        post_form(client, "/login", {"email": "owner@example.com", "password": "wrong"}, headers=RU)
    throttled = post_form(client, "/login", {"email": "owner@example.com", "password": PASSWORD}, headers=RU)
    page = throttled.get_data(as_text=True)
    assert throttled.status_code == 429 and "<h1>Слишком много неудачных входов</h1>" in page
    assert "примерно через 1 мин." in page and "Вернуться ко входу" in page
    make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    member = app.test_client()
    log_in(member, "member@example.com")
    refused = post_form(member, "/reports/spend", {"date": "2026-01-02", "utm_source": "vk", "amount": "9"},
                        page="/reports/spend", headers=RU)
    assert refused.status_code == 403
    assert "Ваша роль в этом пространстве позволяет просматривать это" in refused.get_data(as_text=True)


def test_numbers_money_and_dates_follow_the_locale(app, owner, owner_client):
    workspace_id = workspace_of(app, owner)
    moment = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    for index in range(3):
        lead = add_lead(app, workspace_id, moment, "google", "cpc", "brand", name=f"Lead {index}")
    add_sale(app, workspace_id, lead, "won", 18404000, moment, moment)
    tiles_ru = owner_client.get("/?period=30d", headers=RU).get_data(as_text=True)
    assert "18\u00a0404\u00a0000\u00a0₽" in tiles_ru
    tiles_en = owner_client.get("/?period=30d", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "RUB\u00a018,404,000" in tiles_en
    leads_ru = owner_client.get("/leads", headers=RU).get_data(as_text=True)
    assert "выиграна" in leads_ru and "г., " in leads_ru  # the deal's state and a Russian date ("3 дек. 2026 г., …")


def test_filters_format_for_each_locale(app):
    with app.test_request_context(headers=RU):
        assert number(10440) == "10\u00a0440"
        assert money(Decimal("1500.5"), "RUB") == "1\u00a0500,50\u00a0₽"
        assert percent(Decimal("12.5"), 1) == "12,5\u00a0%"
        assert local_date(date(2026, 3, 8)) == "8 мар. 2026\u202fг."
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert number(10440) == "10,440"
        assert money(Decimal("18404000"), "RUB") == "RUB\u00a018,404,000"
        assert money(Decimal("1500.5"), "USD") == "$1,500.50"
        assert percent(-5, signed=True) == "-5%" and percent(40, signed=True) == "+40%"
        assert local_datetime(datetime(2026, 3, 8, 9, 5, tzinfo=UTC)) == "Mar 8, 2026, 9:05\u202fAM"
    with app.test_request_context(headers=UK):
        assert money(Decimal("1200"), "UAH") == "1\u00a0200\u00a0₴"


def test_csv_export_headers_follow_the_language(owner_client):
    text = owner_client.get("/reports/roi.csv", headers=RU).get_data(as_text=True)
    header = next(csv.reader(io.StringIO(text)))
    assert header[:3] == ["Группа", "Расход", "Лиды"] and "Итого" in text
    english = next(csv.reader(io.StringIO(owner_client.get("/reports/roi.csv").get_data(as_text=True))))
    assert english[:3] == ["group", "spend", "leads"]  # the identifiers scripts read


def test_catalogs_are_compiled_when_missing_or_older_than_their_po(app, tmp_path):
    directory = tmp_path / "translations"
    po = translations_directory(app) / "ru" / "LC_MESSAGES" / "messages.po"
    (directory / "ru" / "LC_MESSAGES").mkdir(parents=True)
    copy = directory / "ru" / "LC_MESSAGES" / "messages.po"
    copy.write_bytes(po.read_bytes())
    assert compile_catalogs(directory) == [copy.with_suffix(".mo")]
    assert compile_catalogs(directory) == []  # up to date: nothing to do
    later = copy.stat().st_mtime + 10
    import os

    os.utime(copy, (later, later))
    assert compile_catalogs(directory) == [copy.with_suffix(".mo")]


def _token(client, path: str) -> str:
    import re

    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


@pytest.mark.browser
@pytest.mark.integration
@pytest.mark.parametrize(("html_lang", "data_lang", "labels"), [
    ("ru", "", ["Имя", "Телефон", "E-mail", "Сообщение", "Отправить"]),
    ("en", 'data-lang="uk"', ["Імʼя", "Телефон", "E-mail", "Повідомлення", "Надіслати"]),
    ("de", "", ["Name", "Phone", "E-mail", "Message", "Send"]),
])
def test_snippet_form_speaks_the_page_language(other_origin_site, live_server, page, html_lang, data_lang, labels):
    site, pages = other_origin_site
    pages["/form.html"] = (f'<!doctype html><html lang="{html_lang}"><head><meta charset="utf-8"></head><body>'
                           f'<div data-leadpath-form {data_lang}></div>'
                           f'<script src="{live_server}/static/js/leadpath.js" data-workspace="x" async></script>'
                           '</body></html>').encode()
    page.goto(f"{site}/form.html")
    page.wait_for_selector(".leadpath-form label")
    assert page.locator(".leadpath-form label").all_text_contents() == labels[:4]
    assert page.locator(".leadpath-submit").text_content() == labels[4]
