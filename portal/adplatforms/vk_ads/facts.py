"""What VK Ads documents and the client relies on, in one place (sources: docs/adplatforms-vk-google.md).

VK Ads is the myTarget engine under ads.vk.com: campaigns are `ad_plans`, money comes as decimal strings in the
account's currency, before VAT.
"""
from zoneinfo import ZoneInfo

PLATFORM = "vk_ads"

API_URL = "https://ads.vk.com"
# The consent page of the authorization-code flow; `action=oauth2` and the OAuth parameters go in its query.
OAUTH_URL = "https://ads.vk.com/hq/settings/access"

TOKEN_PATH = "/api/v2/oauth2/token.json"
TOKEN_DELETE_PATH = "/api/v2/oauth2/token/delete.json"
USER_PATH = "/api/v3/user.json"  # the User resource as documented (v3); currency, types, id, username
AGENCY_CLIENTS_PATH = "/api/v2/agency/clients.json"  # for users of type "agency"
MANAGER_CLIENTS_PATH = "/api/v3/manager/clients.json"  # for users of type "manager"; the same item shape
AD_PLANS_PATH = "/api/v2/ad_plans.json"
# Daily statistics of ad plans. The statistics page documents `{banners|campaigns|users}`; `ad_plans` is what the
# new cabinet's campaigns are and what working clients call. The object is a constructor argument in case VK moves.
STATISTICS_PATH = "/api/v2/statistics/{object}/day.json"
STATISTICS_OBJECT = "ad_plans"

# Rights asked of an advertiser (read statistics and campaigns) and of an agency or manager (read its clients).
SCOPES = ("read_ads", "read_clients", "read_manager_clients")

TOKENS_PER_USER = 5  # per (client_id, user); a sixth token is refused with HTTP 403 and cannot be raised
ACCESS_TOKEN_SECONDS = 86400
LIST_LIMIT_MAX = 50  # `limit` of ad_plans.json and the agency's and manager's clients
LIST_PAGES_MAX = 10_000  # a list that never ends (no `count`, pages that repeat) stops here
STATISTICS_IDS_MAX = 200  # ids per statistics request
STATISTICS_DAYS_BACK = 365  # daily statistics are only kept for the last 365 days
# Days per statistics request. The docs name no limit; some clients split at 92 days. Splitting costs nothing
# when the limit does not exist, so the client splits.
STATISTICS_DAYS_PER_REQUEST = 92
CAMPAIGN_STATUSES = ("active", "blocked", "deleted")  # deleted campaigns spent money too

# VK Ads states datetimes in Moscow time unless said otherwise; the statistics day is taken to be Moscow's too.
TIMEZONE = "Europe/Moscow"
MOSCOW = ZoneInfo(TIMEZONE)

# 401 answers carry {"code": ..., "message": ...}: every one of these means the token cannot be used again.
DEAD_TOKEN_CODES = frozenset({"invalid_token", "expired_token", "invalid_client", "invalid_user", "revoked_token"})
EXPIRED_TOKEN_CODE = "expired_token"  # the one a refresh cures

RATE_LIMIT_HEADERS = ("RPS", "Hourly", "Daily")  # X-RateLimit-<period>-Limit / -Remaining
