"""The ad platforms Leadpath imports spend from: one entry each, naming the platform, how people call it, the
utm_source its ads usually carry, whether this installation has the platform's OAuth app configured, and how to
build its wire client from the app config. Adding a platform is one entry here (and its client package).

Plain code: no Flask, no database — the config is passed in as a mapping.
"""
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import requests

from portal.adplatforms.base import PlatformClient
from portal.adplatforms.google_ads.client import client_from_config as google_ads_client
from portal.adplatforms.vk_ads.client import client_from_config as vk_ads_client
from portal.adplatforms.yandex_direct.client import YandexDirectClient

# What a platform's costs are: asked with or without VAT, always without, or not documented.
VAT_EITHER, VAT_EXCLUDED, VAT_UNKNOWN = "either", "excluded", "unknown"


@dataclass(frozen=True)
class Platform:
    name: str  # stored in ad_accounts.platform and in URLs
    display_name: str
    default_source: str  # the utm_source an account's spend gets unless the owner changes it
    configured: Callable[[Mapping], bool]
    # config, session, include_vat → a client; include_vat is honoured by platforms that can report either way
    build: Callable[[Mapping, requests.Session | None, bool], PlatformClient]
    vat: str = VAT_UNKNOWN  # what the platform's costs are (VAT_*), for the settings page
    # Refresh a token this long before it expires. Long-lived tokens are renewed well ahead; VK Ads' day-long ones
    # only near their end, because a refresh kills the old access token at once (an import still reading with it
    # would fail) and one refresh per import would pass one import's token to the next for nothing.
    refresh_before: timedelta = timedelta(days=30)


def _yandex_direct(config: Mapping, session: requests.Session | None, include_vat: bool) -> PlatformClient:
    return YandexDirectClient(config["YANDEX_DIRECT_CLIENT_ID"], config["YANDEX_DIRECT_CLIENT_SECRET"],
                              oauth_base=config["YANDEX_DIRECT_OAUTH_URL"], api_base=config["YANDEX_DIRECT_API_URL"],
                              session=session, timeout=config["AD_PLATFORM_TIMEOUT_SECONDS"],
                              report_wait_seconds=config["AD_REPORT_WAIT_SECONDS"], include_vat=include_vat)


def _keys_set(prefix: str) -> Callable[[Mapping], bool]:
    return lambda config: bool(config.get(f"{prefix}_CLIENT_ID") and config.get(f"{prefix}_CLIENT_SECRET"))


PLATFORMS: dict[str, Platform] = {platform.name: platform for platform in (
    # Yandex Direct reports costs with or without VAT as asked (IncludeVAT).
    Platform("yandex_direct", "Yandex Direct", "yandex", _keys_set("YANDEX_DIRECT"), _yandex_direct,
             vat=VAT_EITHER),
    # VK Ads' figures are before VAT (its cabinet's help; the API's `spent` assumed the same).
    Platform("vk_ads", "VK Ads", "vk", _keys_set("VK_ADS"),
             lambda config, session, _include_vat: vk_ads_client(config, session), vat=VAT_EXCLUDED,
             refresh_before=timedelta(hours=1)),
    # Whether Google Ads' cost_micros includes tax is not documented.
    Platform("google_ads", "Google Ads", "google", _keys_set("GOOGLE_ADS"),
             lambda config, session, _include_vat: google_ads_client(config, session), vat=VAT_UNKNOWN),
)}


def platform(name: str) -> Platform | None:
    return PLATFORMS.get(name)


def configured_platforms(config: Mapping) -> list[Platform]:
    return [entry for entry in PLATFORMS.values() if entry.configured(config)]
