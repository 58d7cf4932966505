"""amoCRM's two regions: amoCRM (www.amocrm.ru, accounts on .amocrm.ru / .amocrm.com) and Kommo (www.kommo.com,
accounts on .kommo.com). They run the same API; what differs is the connect button (script, `class`, attributes),
the consent page, the domains an account may live on, and the API host a renamed account's address is asked at.

A workspace's region is chosen in Settings → amoCRM before connecting (`AmoCRMConnection.region`). Every value
comes from config.py, so tests and the demo point both regions at the sandbox.
"""
from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app

from portal.amocrm.api import oauth

AMOCRM, KOMMO = "amocrm", "kommo"
REGION_NAMES = (AMOCRM, KOMMO)


@dataclass(frozen=True)
class Region:
    name: str
    label: str  # the brand, as the owner knows it
    button_class: str  # the class the official button script looks for on its <script> tag
    button_src: str
    oauth_url: str
    allowed_domains: tuple[str, ...]
    api_domain: str  # asked for a renamed account's address when a token has no `api_domain` claim


def region(name: str | None) -> Region:
    """The configured region `name`; the default region (AMOCRM_REGION) for anything else."""
    config = current_app.config
    if name not in REGION_NAMES:
        name = config.get("AMOCRM_REGION") if config.get("AMOCRM_REGION") in REGION_NAMES else AMOCRM
    if name == KOMMO:
        return Region(KOMMO, "Kommo", "kommo_oauth", config["KOMMO_BUTTON_SRC"], config["KOMMO_OAUTH_URL"],
                      tuple(config["KOMMO_ALLOWED_DOMAINS"]), config["KOMMO_API_DOMAIN"])
    return Region(AMOCRM, "amoCRM", "amocrm_oauth", config["AMOCRM_BUTTON_SRC"], config["AMOCRM_OAUTH_URL"],
                  tuple(config["AMOCRM_ALLOWED_DOMAINS"]), config["AMOCRM_API_DOMAIN"])


def all_domains() -> tuple[str, ...]:
    """Every domain an account of either region may live on."""
    return region(AMOCRM).allowed_domains + region(KOMMO).allowed_domains


def dev_hosts() -> Sequence[str]:
    return current_app.config["AMOCRM_DEV_HOSTS"]


def account_host(text: str | None, region_name: str | None) -> str:
    """The account host `text` names when it belongs to the region (or is a configured development host);
    raises `oauth.InvalidReferer` otherwise: a Kommo workspace never sends its keys to an amoCRM host, nor the
    other way round."""
    return oauth.account_host(text, region(region_name).allowed_domains, dev_hosts())


def region_of_host(host: str, fallback: str | None) -> str:
    """The region whose domains `host` belongs to; `fallback` (the chosen region) for a development host."""
    for name in REGION_NAMES:
        try:
            oauth.account_host(host, region(name).allowed_domains)
        except oauth.InvalidReferer:
            continue
        return name
    return region(fallback).name


def of_connection(connection) -> Region:
    """The region of a workspace's connection row (or None): the one chosen (or connected with); for a connection
    made before regions existed, the one its account host belongs to; else the default."""
    if connection is None or connection.region in REGION_NAMES or not connection.base_domain:
        return region(connection.region if connection is not None else None)
    return region(region_of_host(connection.base_domain, None))


def account_url(host: str) -> str:
    """`https://host` of an account (http for a development host such as the sandbox)."""
    return oauth.base_url(host, dev_hosts())
