"""What the Google Ads API documents and the client relies on, in one place (sources: docs/adplatforms-vk-google.md)."""

PLATFORM = "google_ads"

API_URL = "https://googleads.googleapis.com"
OAUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth"
TOKEN_URL = "https://oauth2.googleapis.com/token"
# Major versions live about a year; v21 was sunset on 2026-08-05 and Google recommends v26 to newcomers.
API_VERSION = "v26"
SCOPE = "https://www.googleapis.com/auth/adwords"

LIST_ACCESSIBLE_PATH = "/{version}/customers:listAccessibleCustomers"
SEARCH_STREAM_PATH = "/{version}/customers/{customer_id}/googleAds:searchStream"

CUSTOMER_QUERY = ("SELECT customer.id, customer.descriptive_name, customer.currency_code, customer.time_zone, "
                  "customer.manager FROM customer")
# Every account under a manager, at any depth (level 0 is the manager itself; managers below carry no cost).
CUSTOMER_CLIENT_QUERY = ("SELECT customer_client.id, customer_client.descriptive_name, customer_client.currency_code, "
                         "customer_client.time_zone, customer_client.manager, customer_client.status "
                         "FROM customer_client WHERE customer_client.level > 0 AND customer_client.manager = FALSE")
COST_QUERY = ("SELECT segments.date, campaign.id, campaign.name, metrics.cost_micros, metrics.impressions, "
              "metrics.clicks FROM campaign WHERE segments.date BETWEEN '{first}' AND '{last}'")

MICROS_PER_UNIT = 1_000_000
STREAM_BATCH_ROWS = 10_000  # searchStream and search hand rows over in batches (pages) of this many

DEFAULT_QUOTA_RETRY_SECONDS = 60.0  # when a quota error names no retryDelay
