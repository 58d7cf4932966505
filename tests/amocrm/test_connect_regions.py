"""amoCRM's two regions as configured: which account hosts each accepts, the button each shows, the page policy
that lets both buttons load, and the `api_domain` claim a renamed account's address is asked at."""
import jwt
import pytest

from portal.amocrm import regions
from portal.amocrm.api import oauth
from portal.amocrm.authorization import button_attributes
from portal.security import content_security_policy


@pytest.mark.parametrize(("region", "host", "accepted"), [
    ("amocrm", "shop.amocrm.ru", True),
    ("amocrm", "shop.amocrm.com", True),
    ("amocrm", "shop.kommo.com", False),
    ("kommo", "shop.kommo.com", True),
    ("kommo", "shop.amocrm.ru", False),
    ("kommo", "kommo.com.evil.example", False),
    ("kommo", "127.0.0.1:5001", True),  # the sandbox (a development host) stands in for either
    ("amocrm", "127.0.0.1:5001", True),
])
def test_each_region_accepts_its_own_account_hosts(app_context, region, host, accepted):
    if accepted:
        assert regions.account_host(host, region) == host
    else:
        with pytest.raises(oauth.InvalidReferer):
            regions.account_host(host, region)


def test_a_hosts_region_and_the_default_region(app, app_context):
    assert regions.region_of_host("shop.kommo.com", None) == "kommo"
    assert regions.region_of_host("shop.amocrm.ru", "kommo") == "amocrm"
    assert regions.region_of_host("127.0.0.1:5001", "kommo") == "kommo"  # a development host keeps the choice
    assert regions.region(None).name == "amocrm" and regions.region("bogus").name == "amocrm"
    app.config["AMOCRM_REGION"] = "kommo"
    assert regions.region(None).name == "kommo"


def test_each_region_has_its_own_button(app, app_context):
    amocrm, kommo = regions.region("amocrm"), regions.region("kommo")
    assert (amocrm.button_class, amocrm.button_src) == ("amocrm_oauth", "https://www.amocrm.ru/auth/button.min.js")
    assert (kommo.button_class, kommo.button_src) == ("kommo_oauth", "https://www.kommo.com/auth/button.js")
    assert kommo.oauth_url == "https://www.kommo.com/oauth" and amocrm.oauth_url == "https://www.amocrm.ru/oauth"
    app.config.update(AMOCRM_CLIENT_ID="shared", AMOCRM_CLIENT_SECRET="secret")
    with app.test_request_context():
        amocrm_button, kommo_button = button_attributes("st", "amocrm"), button_attributes("st", "kommo")
    assert amocrm_button["color"] == "blue" and "theme" not in amocrm_button
    assert kommo_button["theme"] == "light" and "color" not in kommo_button
    assert kommo_button["title"] == "Connect Kommo" and kommo_button["client-id"] == "shared"


def test_the_page_policy_lets_both_buttons_load():
    policy = content_security_policy("https://www.amocrm.ru/auth/button.min.js", "https://www.kommo.com/auth/button.js")
    assert "script-src 'self' https://www.amocrm.ru https://www.kommo.com;" in policy


def test_the_api_domain_claim_names_where_to_ask_for_a_renamed_account():
    token = jwt.encode({"api_domain": "API-B.amocrm.ru", "account_id": 1}, "k", algorithm="HS256")
    assert oauth.api_domain_of(token) == "api-b.amocrm.ru"
    assert oauth.api_domain_of(jwt.encode({"account_id": 1}, "k", algorithm="HS256")) is None  # an older token
    assert oauth.api_domain_of("not a token") is None and oauth.api_domain_of(None) is None


def test_a_connection_made_before_regions_is_known_by_its_host(app_context):
    from portal.models import AmoCRMConnection

    assert regions.of_connection(None).name == "amocrm"
    assert regions.of_connection(AmoCRMConnection(base_domain="shop.kommo.com")).name == "kommo"
    assert regions.of_connection(AmoCRMConnection(base_domain="shop.amocrm.ru")).name == "amocrm"
    # A choice made after disconnecting wins over the host of the account connected before.
    assert regions.of_connection(AmoCRMConnection(base_domain="shop.amocrm.ru", region="kommo")).name == "kommo"
