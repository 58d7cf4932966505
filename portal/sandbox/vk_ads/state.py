"""The VK Ads sandbox's world: apps, users (advertisers, agencies and their clients), ad plans, tokens, codes,
limits and injected faults. One lock guards it all; every method that reads or writes takes it."""
import secrets
import threading
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

# The emulator keeps its own copy of VK's documented numbers: it answers to the docs, not to the client's facts.
MOSCOW = ZoneInfo("Europe/Moscow")

DEFAULT_CONFIG = {
    # The app (API client) tokens are issued to, and where its consent page may send users back.
    "VK_SANDBOX_CLIENT_ID": "vk-sandbox-client",
    "VK_SANDBOX_CLIENT_SECRET": "vk-sandbox-secret",
    "VK_SANDBOX_REDIRECT_URIS": ["http://127.0.0.1:5000/settings/ad-accounts/vk_ads/callback"],
    "VK_SANDBOX_ACCESS_TOKEN_TTL": 86400,
    "VK_SANDBOX_CODE_TTL": 3600,  # "a special token with a lifetime of one hour"
    "VK_SANDBOX_TOKENS_PER_USER": 5,
    # Per-user limits over calendar periods. VK publishes the mechanism (per second, hour, day; X-RateLimit-*
    # headers; 429) but not the numbers, so these are settings.
    "VK_SANDBOX_LIMIT_RPS": 10,
    "VK_SANDBOX_LIMIT_HOURLY": 20_000,
    "VK_SANDBOX_LIMIT_DAILY": 200_000,
    "VK_SANDBOX_STATISTICS_IDS_MAX": 200,
    "VK_SANDBOX_STATISTICS_DAYS_BACK": 365,
    # Days per statistics request: the docs name no limit (0 = none); set it to check a client's splitting.
    "VK_SANDBOX_STATISTICS_DAYS_PER_REQUEST": 0,
    "VK_SANDBOX_LIST_LIMIT_MAX": 50,
    # Whether ad_plans.json without a status filter lists deleted plans: the docs do not say.
    "VK_SANDBOX_LIST_DELETED_BY_DEFAULT": False,
    "VK_SANDBOX_TODAY": None,  # an ISO date to pin "today" (Moscow); None: the real one
    "VK_SANDBOX_SEED": "vk",  # the figures' seed (portal.sandbox.spend_figures)
}

SEED_USERS = [
    # An advertiser, the app's own account (client_credentials), with a few plans.
    {"id": 1001, "username": "advertiser@sandbox.test", "currency": "RUB", "types": ["advert"],
     "plans": ["Search — brand", "Retargeting", "Lookalike"]},
    # An agency with two clients.
    {"id": 2001, "username": "agency@sandbox.test", "currency": "RUB", "types": ["agency"], "plans": []},
    {"id": 2101, "username": "client-one@sandbox.test", "currency": "RUB", "types": ["advert", "agency_client"],
     "agency_id": 2001, "client_name": "Client One", "plans": ["Client one — spring", "Client one — summer"]},
    {"id": 2102, "username": "client-two@sandbox.test", "currency": "RUB", "types": ["advert", "agency_client"],
     "agency_id": 2001, "client_name": "Client Two", "plans": ["Client two — always on"]},
    # A manager (a representative's account) with one client: its clients are listed by ManagerClients.
    {"id": 4001, "username": "manager@sandbox.test", "currency": "RUB", "types": ["manager"], "plans": []},
    {"id": 4101, "username": "managed@sandbox.test", "currency": "RUB", "types": ["advert"], "agency_id": 4001,
     "client_name": "Managed client", "plans": ["Managed — search"]},
]


class VKSandboxState:
    def __init__(self, config: dict) -> None:
        self.lock = threading.RLock()
        self.config = {**DEFAULT_CONFIG, **config}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.users: dict[int, dict] = {}
            self.plans: dict[int, dict] = {}
            self.tokens: dict[str, dict] = {}  # access token → {user_id, client_id, refresh_token, expires_at, …}
            self.codes: dict[str, dict] = {}
            self.faults: list[dict] = []  # [{status, remaining, path}]
            self.windows: dict[tuple, int] = {}  # (user, period, period start) → calls
            self.calls: list[dict] = []
            self.next_plan_id = 5_000_001
            self.next_user_id = 3001
            for user in SEED_USERS:
                self.add_user(**{key: value for key, value in user.items() if key != "plans"}, plans=user["plans"])

    # -- world ---------------------------------------------------------------------------------------------

    def add_user(self, *, username: str, currency: str = "RUB", types: list[str] | None = None,
                 agency_id: int | None = None, client_name: str | None = None, id: int | None = None,
                 plans: list[str] | None = None) -> dict:
        with self.lock:
            user_id = id or self.next_user_id
            self.next_user_id = max(self.next_user_id, user_id + 1)
            if agency_id is not None and agency_id not in self.users:
                raise ValueError(f"no agency or manager {agency_id}")
            user = {"id": user_id, "username": username, "currency": currency,
                    "types": types or (["advert", "agency_client"] if agency_id else ["advert"]),
                    "agency_id": agency_id, "client_name": client_name or username, "status": "active"}
            self.users[user_id] = user
            for name in plans or []:
                self.add_plan(user_id, name)
            return user

    def add_plan(self, user_id: int, name: str, status: str = "active") -> dict:
        with self.lock:
            plan = {"id": self.next_plan_id, "name": name, "status": status, "user_id": user_id}
            self.plans[plan["id"]] = plan
            self.next_plan_id += 1
            return plan

    def plans_of(self, user_id: int) -> list[dict]:
        with self.lock:
            return [plan for plan in self.plans.values() if plan["user_id"] == user_id]

    def today(self) -> date:
        pinned = self.config.get("VK_SANDBOX_TODAY")
        return date.fromisoformat(pinned) if pinned else datetime.now(MOSCOW).date()

    # -- tokens --------------------------------------------------------------------------------------------

    def issue_token(self, client_id: str, user_id: int) -> dict | None:
        """A new token set, or None when the user already has the most tokens the app may hold for them."""
        with self.lock:
            held = [token for token in self.tokens.values()
                    if token["client_id"] == client_id and token["user_id"] == user_id]
            if len(held) >= self.config["VK_SANDBOX_TOKENS_PER_USER"]:
                return None
            token = {"access_token": secrets.token_hex(20), "refresh_token": secrets.token_hex(20),
                     "client_id": client_id, "user_id": user_id, "revoked": False,
                     "expires_at": time.time() + self.config["VK_SANDBOX_ACCESS_TOKEN_TTL"]}
            self.tokens[token["access_token"]] = token
            return token

    def refresh(self, client_id: str, refresh_token: str) -> dict | None:
        """The same token instance with a new access token; the old access token stops existing."""
        with self.lock:
            token = next((token for token in self.tokens.values() if token["refresh_token"] == refresh_token
                          and token["client_id"] == client_id and not token["revoked"]), None)
            if token is None:
                return None
            del self.tokens[token["access_token"]]
            token["access_token"] = secrets.token_hex(20)
            token["expires_at"] = time.time() + self.config["VK_SANDBOX_ACCESS_TOKEN_TTL"]
            self.tokens[token["access_token"]] = token
            return token

    def delete_tokens(self, client_id: str, user_id: int) -> int:
        with self.lock:
            doomed = [key for key, token in self.tokens.items()
                      if token["client_id"] == client_id and token["user_id"] == user_id]
            for key in doomed:
                del self.tokens[key]
            return len(doomed)

    def revoke(self, user_id: int | None) -> int:
        with self.lock:
            hit = [token for token in self.tokens.values() if user_id is None or token["user_id"] == user_id]
            for token in hit:
                token["revoked"] = True
            return len(hit)

    def expire(self, user_id: int | None) -> int:
        with self.lock:
            hit = [token for token in self.tokens.values() if user_id is None or token["user_id"] == user_id]
            for token in hit:
                token["expires_at"] = time.time() - 1
            return len(hit)

    # -- limits and faults -----------------------------------------------------------------------------------

    def count_call(self, user_id: int) -> dict[str, tuple[int, int]]:
        """Count one call against the user's calendar second, hour and day; {period: (limit, remaining)} where a
        remaining below zero means this call is over the limit."""
        moment = time.time()
        moscow = datetime.now(MOSCOW)
        periods = {"RPS": (int(moment), self.config["VK_SANDBOX_LIMIT_RPS"]),
                   "Hourly": (moscow.strftime("%Y%m%d%H"), self.config["VK_SANDBOX_LIMIT_HOURLY"]),
                   "Daily": (moscow.strftime("%Y%m%d"), self.config["VK_SANDBOX_LIMIT_DAILY"])}
        report = {}
        with self.lock:
            if len(self.windows) > 10_000:
                self.windows = {key: value for key, value in self.windows.items() if key[1] != "RPS"}
            for period, (start, limit) in periods.items():
                key = (user_id, period, start)
                self.windows[key] = self.windows.get(key, 0) + 1
                report[period] = (limit, limit - self.windows[key])
        return report

    def take_fault(self, path: str) -> int | None:
        with self.lock:
            for fault in self.faults:
                if fault["remaining"] > 0 and (not fault.get("path") or fault["path"] == path):
                    fault["remaining"] -= 1
                    return fault["status"]
        return None

    def record(self, method: str, path: str, query: dict) -> None:
        with self.lock:
            self.calls.append({"method": method, "path": path, "query": query})
            del self.calls[:-5000]


def window_too_old(first: date, today: date, days_back: int) -> bool:
    return first < today - timedelta(days=days_back)
