"""The Google Ads sandbox's world: the OAuth client, Google users and the customers they reach directly, the
manager hierarchy, campaigns, tokens, quotas and injected faults. One lock guards it all."""
import secrets
import threading
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

DEFAULT_CONFIG = {
    "GOOGLE_SANDBOX_CLIENT_ID": "google-sandbox-client.apps.googleusercontent.com",
    "GOOGLE_SANDBOX_CLIENT_SECRET": "google-sandbox-secret",
    "GOOGLE_SANDBOX_REDIRECT_URIS": ["http://127.0.0.1:5000/settings/ad-accounts/google_ads/callback"],
    "GOOGLE_SANDBOX_ACCESS_TOKEN_TTL": 3599,
    "GOOGLE_SANDBOX_CODE_TTL": 600,
    "GOOGLE_SANDBOX_VERSIONS": ["v24", "v25", "v26"],  # the versions that answer; others get 404
    "GOOGLE_SANDBOX_BATCH_ROWS": 10_000,  # rows per searchStream batch and per search page
    # Operations per day for the OAuth client's project (Basic access: 15,000; Explorer: 2,880), counted over a
    # sliding 24 hours; each search, searchStream or listAccessibleCustomers call counts one (how Google counts
    # searches is not published). 0: no daily limit.
    "GOOGLE_SANDBOX_DAILY_OPERATIONS": 15_000,
    # Short-term requests per second per customer (Google publishes none; 0: no limit) and the retryDelay its
    # RESOURCE_TEMPORARILY_EXHAUSTED answers name.
    "GOOGLE_SANDBOX_REQUESTS_PER_SECOND": 0,
    "GOOGLE_SANDBOX_RETRY_DELAY_SECONDS": 30,
    "GOOGLE_SANDBOX_TODAY": None,  # an ISO date to pin "today"; None: today in each account's time zone
    "GOOGLE_SANDBOX_SEED": "google",
}

OWNER_EMAIL = "owner@sandbox.test"

# (id, name, currency, time zone, manager, parent manager, status, campaign names)
SEED_CUSTOMERS = [
    ("1111111111", "Direct advertiser", "USD", "America/New_York", False, None, "ENABLED",
     ["Search — brand", "Display — prospecting"]),
    ("2222222222", "Agency MCC", "USD", "Europe/London", True, None, "ENABLED", []),
    ("3333333333", "Client Berlin", "EUR", "Europe/Berlin", False, "2222222222", "ENABLED",
     ["Berlin — search", "Berlin — shopping"]),
    ("4444444444", "Client Moscow", "RUB", "Europe/Moscow", False, "2222222222", "ENABLED", ["Moscow — search"]),
    ("6666666666", "Sub-manager", "USD", "Europe/London", True, "2222222222", "ENABLED", []),
    ("7777777777", "Client under sub-manager", "USD", "America/Chicago", False, "6666666666", "ENABLED",
     ["Chicago — performance max"]),
    ("5555555555", "Closed account", "USD", "America/New_York", False, None, "CANCELED", []),
]


class GoogleSandboxState:
    def __init__(self, config: dict) -> None:
        self.lock = threading.RLock()
        self.config = {**DEFAULT_CONFIG, **config}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.customers: dict[str, dict] = {}
            self.campaigns: dict[int, dict] = {}
            self.users: dict[str, set[str]] = {OWNER_EMAIL: {"1111111111", "2222222222", "5555555555"}}
            self.codes: dict[str, dict] = {}
            self.access_tokens: dict[str, dict] = {}  # token → {email, expires_at, refresh_token}
            self.refresh_tokens: dict[str, dict] = {}  # token → {email, revoked}
            self.faults: list[dict] = []
            self.operations: list[float] = []  # when each counted operation happened (sliding 24 h)
            self.second_windows: dict[tuple, int] = {}
            self.calls: list[dict] = []
            self.next_campaign_id = 20_000_000_001
            for customer_id, name, currency, zone, manager, parent, status, campaigns in SEED_CUSTOMERS:
                self.add_customer(customer_id, name, currency, zone, manager=manager, parent=parent, status=status,
                                  campaigns=campaigns)

    def add_customer(self, customer_id: str, name: str, currency: str, zone: str, *, manager: bool = False,
                     parent: str | None = None, status: str = "ENABLED", campaigns: list[str] | None = None) -> dict:
        with self.lock:
            if parent is not None and not self.customers.get(parent, {}).get("manager"):
                raise ValueError(f"{parent} is not a manager account")
            ZoneInfo(zone)  # an unknown zone fails here, not in a later query
            customer = {"id": customer_id, "descriptive_name": name, "currency_code": currency, "time_zone": zone,
                        "manager": manager, "parent": parent, "status": status}
            self.customers[customer_id] = customer
            for campaign_name in campaigns or []:
                self.add_campaign(customer_id, campaign_name)
            return customer

    def add_campaign(self, customer_id: str, name: str, status: str = "ENABLED") -> dict:
        with self.lock:
            campaign = {"id": self.next_campaign_id, "name": name, "status": status, "customer_id": customer_id}
            self.campaigns[campaign["id"]] = campaign
            self.next_campaign_id += 1
            return campaign

    def campaigns_of(self, customer_id: str) -> list[dict]:
        with self.lock:
            return sorted((campaign for campaign in self.campaigns.values() if campaign["customer_id"] == customer_id),
                          key=lambda campaign: campaign["id"])

    def descendants(self, manager_id: str) -> list[tuple[dict, int]]:
        """(customer, level) of every account below a manager, depth first; the manager itself is level 0."""
        with self.lock:
            found = [(self.customers[manager_id], 0)]
            frontier = [(manager_id, 0)]
            while frontier:
                parent, level = frontier.pop()
                for customer in sorted(self.customers.values(), key=lambda item: item["id"]):
                    if customer["parent"] == parent:
                        found.append((customer, level + 1))
                        frontier.append((customer["id"], level + 1))
            return found

    def under(self, manager_id: str, customer_id: str) -> bool:
        with self.lock:
            current = self.customers.get(customer_id)
            while current is not None:
                if current["id"] == manager_id:
                    return True
                current = self.customers.get(current["parent"]) if current["parent"] else None
            return False

    def today(self, zone: str) -> date:
        pinned = self.config.get("GOOGLE_SANDBOX_TODAY")
        return date.fromisoformat(pinned) if pinned else datetime.now(ZoneInfo(zone)).date()

    # -- tokens --------------------------------------------------------------------------------------------

    def issue(self, email: str, refresh_token: str | None = None) -> dict:
        with self.lock:
            if refresh_token is None:
                refresh_token = "1//" + secrets.token_urlsafe(32)
                self.refresh_tokens[refresh_token] = {"email": email, "revoked": False}
            access_token = "ya29." + secrets.token_urlsafe(32)
            lifetime = self.config["GOOGLE_SANDBOX_ACCESS_TOKEN_TTL"]
            self.access_tokens[access_token] = {"email": email, "refresh_token": refresh_token,
                                                "expires_at": time.time() + lifetime}
            return {"access_token": access_token, "refresh_token": refresh_token}

    def revoke(self, email: str | None) -> int:
        with self.lock:
            hit = [grant for grant in self.refresh_tokens.values() if email is None or grant["email"] == email]
            for grant in hit:
                grant["revoked"] = True
            return len(hit)

    def expire(self, email: str | None) -> int:
        with self.lock:
            hit = [token for token in self.access_tokens.values() if email is None or token["email"] == email]
            for token in hit:
                token["expires_at"] = time.time() - 1
            return len(hit)

    # -- quotas and faults -------------------------------------------------------------------------------------

    def spend_operation(self) -> float | None:
        """Count one operation; the seconds until one is free again when the daily quota is used up."""
        limit = self.config["GOOGLE_SANDBOX_DAILY_OPERATIONS"]
        moment = time.time()
        with self.lock:
            self.operations = [when for when in self.operations if when > moment - 86400]
            if limit and len(self.operations) >= limit:
                return self.operations[0] + 86400 - moment
            self.operations.append(moment)
        return None

    def over_short_term_limit(self, customer_id: str) -> bool:
        limit = self.config["GOOGLE_SANDBOX_REQUESTS_PER_SECOND"]
        if not limit:
            return False
        key = (customer_id, int(time.time()))
        with self.lock:
            if len(self.second_windows) > 10_000:
                self.second_windows.clear()
            self.second_windows[key] = self.second_windows.get(key, 0) + 1
            return self.second_windows[key] > limit

    def take_fault(self) -> dict | None:
        with self.lock:
            for fault in self.faults:
                if fault["remaining"] > 0:
                    fault["remaining"] -= 1
                    return fault
        return None

    def record(self, call: dict) -> None:
        with self.lock:
            self.calls.append(call)
            del self.calls[:-5000]
