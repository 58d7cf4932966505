"""The Yandex Direct sandbox's state: Yandex users (advertisers and agencies), their campaigns, OAuth codes and
tokens, offline reports in their queues, request windows, Units and injected faults. One lock guards it all.

Statistics are not stored: `campaign_day` derives a campaign's impressions, clicks and cost on a day from a hash
of (login, campaign id, date), so every request, process and restart sees the same figures.
"""
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from datetime import date

DEFAULT_CONFIG = {
    "YD_CLIENT_ID": "leadpath-yandex-sandbox-client",
    "YD_CLIENT_SECRET": "leadpath-yandex-sandbox-secret",
    "YD_REDIRECT_URIS": [],  # empty: any redirect_uri is accepted (a real app registers its callback)
    "YD_ACCESS_TOKEN_TTL": 31536000,  # about a year (third-party sources; see docs/adplatforms.md)
    "YD_CODE_TTL": 600,
    # Reports: ≤20 requests per 10 s and ≤5 offline reports queued per user (Yandex "Restrictions").
    "YD_REPORTS_PER_WINDOW": 20,
    "YD_REPORTS_WINDOW_SECONDS": 10.0,
    "YD_OFFLINE_QUEUE_LIMIT": 5,
    # In processingMode auto, a report of more rows than this is built offline (201, then 202 until ready).
    "YD_ONLINE_MAX_ROWS": 2000,
    "YD_REPORT_BUILD_SECONDS": 1.0,  # how long an offline report takes to build
    "YD_RETRY_IN": 1,  # the retryIn header of 201/202 answers, seconds
    "YD_OFFLINE_KEEP_SECONDS": 5 * 3600,  # offline reports are kept 5 hours
    "YD_DAILY_UNITS": 64000,
    "YD_CALL_UNITS": 10,  # points one call of the JSON services costs
    "YD_REPORT_UNITS": 0,  # whether Reports cost points is not documented; 0 by default
    "YD_VAT_PERCENT": 22,  # IncludeVAT=YES adds it to the cost
    "YD_SUMMARY_FORMAT": "Total rows: {count}",  # the last TSV row's exact text is not documented
    "YD_STRICT_REPORT_NAMES": True,  # same ReportName with other parameters → error 4000
    # With a key, tokens are signed (login, client, expiry) and stay valid across restarts of the sandbox (the demo);
    # without one they live in memory only.
    "YD_TOKEN_KEY": None,
}

ADVERTISER, AGENCY = "CLIENT", "AGENCY"


def _campaigns(login: str, count: int, start_id: int) -> list[dict]:
    return [{"Id": start_id + index, "Name": f"{login} campaign {index + 1}", "TimeZone": "Europe/Moscow"}
            for index in range(count)]


class YandexSandboxState:
    def __init__(self, config: dict):
        self.lock = threading.RLock()
        self.base_config = dict(config)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.config = dict(self.base_config)
            self.users: dict[str, dict] = {}
            self.next_client_id = 1000
            self.next_campaign_id = 70000000
            self.codes: dict[str, dict] = {}
            self.tokens: dict[str, dict] = {}  # access token → {login, client_id, expires_at, refresh_token}
            self.refresh_tokens: dict[str, dict] = {}
            self.revoked: set[str] = set()
            self.reports: dict[tuple[str, str], dict] = {}  # (user login, ReportName) → offline report
            self.windows: dict[str, deque] = {}
            self.units_spent: dict[str, int] = {}
            self.faults: dict[str, int] = {}
            self.calls: list[dict] = []
            self.add_user("sandbox-advertiser", ADVERTISER, "RUB", campaigns=3)
            agency = self.add_user("sandbox-agency", AGENCY, "RUB")
            self.add_user("agency-client-rub", ADVERTISER, "RUB", agency=agency["Login"], campaigns=4)
            self.add_user("agency-client-usd", ADVERTISER, "USD", agency=agency["Login"], campaigns=2)

    # -- users and campaigns -------------------------------------------------------------------------------------

    def add_user(self, login: str, kind: str = ADVERTISER, currency: str = "RUB", *, agency: str | None = None,
                 campaigns: int = 0, names: list[str] | None = None) -> dict:
        with self.lock:
            self.next_client_id += 1
            user = {"Login": login, "ClientId": self.next_client_id, "ClientInfo": f"{login} (sandbox)",
                    "Currency": currency, "Type": kind, "agency": agency, "campaigns": []}
            self.users[login] = user
            self.add_campaigns(login, campaigns, names)
            return user

    def add_campaigns(self, login: str, count: int = 0, names: list[str] | None = None) -> list[dict]:
        with self.lock:
            user = self.users[login]
            added = _campaigns(login, count, self.next_campaign_id)
            for index, name in enumerate(names or []):
                added.append({"Id": self.next_campaign_id + len(added) + index, "Name": name,
                              "TimeZone": "Europe/Moscow"})
            self.next_campaign_id += len(added) + 1
            user["campaigns"].extend(added)
            return added

    def clients_of(self, agency: str) -> list[dict]:
        return [user for user in self.users.values() if user["agency"] == agency]

    # -- OAuth ---------------------------------------------------------------------------------------------------

    def issue_code(self, login: str, client_id: str, redirect_uri: str | None) -> str:
        code = str(secrets.randbelow(9000000) + 1000000)  # Yandex ID codes are 7 digits
        self.codes[code] = {"login": login, "client_id": client_id, "redirect_uri": redirect_uri,
                            "expires_at": time.time() + self.config["YD_CODE_TTL"]}
        return code

    def issue_tokens(self, login: str, client_id: str) -> dict:
        ttl = int(self.config["YD_ACCESS_TOKEN_TTL"])
        expires_at = int(time.time() + ttl)
        access, refresh = "y0_" + self._token_body(login, client_id, expires_at), "1:" + secrets.token_urlsafe(40)
        self.tokens[access] = {"login": login, "client_id": client_id, "expires_at": expires_at}
        self.refresh_tokens[refresh] = {"login": login, "client_id": client_id, "access_token": access}
        return {"access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": ttl}

    def _token_body(self, login: str, client_id: str, expires_at: int) -> str:
        key = self.config.get("YD_TOKEN_KEY")
        if not key:
            return secrets.token_urlsafe(40)
        payload = f"{login}.{client_id}.{expires_at}.{secrets.token_hex(8)}"
        return payload + "." + hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()[:32]

    def _signed_token(self, access_token: str) -> dict | None:
        """A signed token issued before a restart (only with YD_TOKEN_KEY)."""
        key = self.config.get("YD_TOKEN_KEY")
        if not key or not access_token.startswith("y0_") or access_token in self.revoked:
            return None
        payload, _, signature = access_token[3:].rpartition(".")
        expected = hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()[:32]
        parts = payload.split(".")
        if not hmac.compare_digest(signature, expected) or len(parts) != 4:
            return None
        return {"login": parts[0], "client_id": parts[1], "expires_at": int(parts[2])}

    def revoke(self, login: str | None = None, access_token: str | None = None) -> int:
        """Revoke a user's tokens (all of them, access and refresh) or one access token with its refresh token."""
        with self.lock:
            doomed = [token for token, row in self.tokens.items()
                      if token == access_token or (login is not None and row["login"] == login)]
            for token in doomed:
                del self.tokens[token]
                self.revoked.add(token)
            for refresh, row in list(self.refresh_tokens.items()):
                if row["access_token"] in doomed or (login is not None and row["login"] == login):
                    del self.refresh_tokens[refresh]
            return len(doomed)

    def user_of(self, access_token: str) -> dict | None:
        row = self.tokens.get(access_token) or self._signed_token(access_token)
        if row is None or row["expires_at"] < time.time():
            return None
        return self.users.get(row["login"])

    # -- limits and faults ---------------------------------------------------------------------------------------

    def take_report_slot(self, login: str) -> bool:
        """One Reports request in the user's sliding window; False when the window is full."""
        now = time.monotonic()
        window = self.windows.setdefault(login, deque())
        while window and window[0] <= now - float(self.config["YD_REPORTS_WINDOW_SECONDS"]):
            window.popleft()
        if len(window) >= int(self.config["YD_REPORTS_PER_WINDOW"]):
            return False
        window.append(now)
        return True

    def spend_units(self, login: str, cost: int) -> tuple[bool, str]:
        """(allowed, Units header value "spent/remaining/daily")."""
        daily = int(self.config["YD_DAILY_UNITS"])
        spent = self.units_spent.get(login, 0)
        if self.take_fault("units_exhausted") or spent + cost > daily:
            return False, f"0/{max(daily - spent, 0)}/{daily}"
        self.units_spent[login] = spent + cost
        return True, f"{cost}/{daily - spent - cost}/{daily}"

    def take_fault(self, kind: str) -> bool:
        left = self.faults.get(kind, 0)
        if left <= 0:
            return False
        self.faults[kind] = left - 1
        return True


def campaign_day(login: str, campaign_id: int, day: date) -> tuple[int, int, int]:
    """(impressions, clicks, cost in micros rounded to 10 000 as Yandex rounds) for a campaign on a day; about one
    day in eight has no impressions (no row in a report)."""
    digest = hashlib.sha256(f"{login}|{campaign_id}|{day.isoformat()}".encode()).digest()
    if digest[0] < 32:
        return 0, 0, 0
    impressions = 100 + int.from_bytes(digest[1:3], "big") % 5000
    clicks = 1 + impressions * (1 + digest[3] % 40) // 1000
    cost_micros = clicks * (5_000_000 + int.from_bytes(digest[4:7], "big") % 60_000_000)
    return impressions, clicks, cost_micros // 10_000 * 10_000
