"""In-memory state of the amoCRM sandbox.

One ``SandboxState`` per app, guarded by one re-entrant lock: every view that reads or writes takes
``state.lock`` for the whole operation, so the threaded dev server cannot interleave two writes.
Ids are integers allocated from per-kind counters, so a fresh state always hands out the same ids.
``reset()`` rebuilds everything from the app config (the RSA key survives, so the JWKS stays valid).
"""

import copy
import re
import secrets
import threading
import time
import uuid
from collections import deque

WON_STATUS_ID = 142
LOST_STATUS_ID = 143

# Predefined lead fields of type tracking_data: amoCRM names them by the lowercased code.
TRACKING_FIELD_CODES = (
    "UTM_SOURCE",
    "UTM_MEDIUM",
    "UTM_CAMPAIGN",
    "UTM_TERM",
    "UTM_CONTENT",
    "UTM_REFERRER",
    "REFERRER",
    "GCLID",
    "YCLID",
    "FBCLID",
    "GCLIENTID",
    "_YM_UID",
    "ROISTAT",
    "FROM",
)
# Yandex.Metrica's Openstat labels: some accounts have these predefined tracking fields too.
OPENSTAT_FIELD_CODES = ("OPENSTAT_SERVICE", "OPENSTAT_CAMPAIGN", "OPENSTAT_AD", "OPENSTAT_SOURCE")
# Custom lead fields every account has, one of each common type (name, type, enum values).
SEED_LEAD_FIELDS = (
    ("Комментарий", "textarea", None),
    ("Город", "text", None),
    ("Бюджет клиента", "numeric", None),
    ("Вид услуги", "select", ("Консультация", "Монтаж", "Обслуживание")),
    ("Интересы", "multiselect", ("Цена", "Сроки", "Гарантия")),
    ("Дата замера", "date", None),
    ("Повторный клиент", "checkbox", None),
    ("Страница заявки", "url", None),
)
PHONE_ENUMS = ("WORK", "WORKDD", "MOB", "FAX", "HOME", "OTHER")
EMAIL_ENUMS = ("WORK", "PRIV", "OTHER")
DEFAULT_CONFIG = {
    "SANDBOX_ACCESS_TOKEN_TTL": 86400,
    "SANDBOX_REFRESH_TOKEN_TTL": 90 * 86400,
    "SANDBOX_CODE_TTL": 1200,
    "SANDBOX_RATE_LIMIT_PER_SEC": 7,
    "SANDBOX_ACCOUNT_RATE_LIMIT_PER_SEC": 50,
    "SANDBOX_WEBHOOK_RETRY_DELAYS": [1, 3],
    "SANDBOX_WEBHOOK_DISABLE_AFTER": 100,
    "SANDBOX_WEBHOOK_TIMEOUT": 2.0,
    "SANDBOX_SECRETS_TIMEOUT": 5.0,
    "SANDBOX_INTEGRATIONS": None,
    "SANDBOX_PUBLIC_HOST": None,
    # Seconds before a new or changed entity is seen by ``query=`` search (amoCRM's index is not instant).
    "SANDBOX_SEARCH_INDEX_DELAY": 3.0,
    # New accounts' list filtering: "ignored" (amoCRM's default: filtering is enabled per account by support)
    # or "applied".
    "SANDBOX_LIST_FILTERS": "ignored",
    # Sustained excess: this many 429s within SANDBOX_BLOCK_WINDOW seconds block the caller for
    # SANDBOX_BLOCK_SECONDS (HTML 403 on every call, the token endpoint included).
    "SANDBOX_BLOCK_AFTER_429S": 50,
    "SANDBOX_BLOCK_WINDOW": 60.0,
    "SANDBOX_BLOCK_SECONDS": 60.0,
    # A JSON file that keeps the whole state across restarts (the demo); None keeps it in memory only.
    "SANDBOX_STATE_FILE": None,
}
# Registered when SANDBOX_INTEGRATIONS is not given, so `flask --app portal.sandbox run` is usable alone.
DEFAULT_INTEGRATION = {
    "client_id": "leadpath-sandbox-client",
    "client_secret": "leadpath-sandbox-secret",
    "redirect_uri": "http://127.0.0.1:5000/amocrm/callback",
    "name": "Leadpath (sandbox)",
}
NO_FAULTS = {
    "rate_limit_per_sec": None,
    "http_500_rate": 0.0,
    "timeout_rate": 0.0,
    "timeout_seconds": 10.0,
    "drop_after_commit_rate": 0.0,
    "latency_ms": 0,
    "html_429": False,
    "block": False,
    "paths": None,
}
MAX_DELIVERIES = 1000
COUNTER_NAMES = (
    "http_429",
    "http_403",
    "http_500",
    "timeouts",
    "drops_after_commit",
    "tokens_issued",
    "tokens_refreshed",
    "refresh_revoked",
    "webhook_deliveries",
    "webhook_failures",
    "webhooks_disabled",
    "blocks",
    "http_403_rights",
)


def now() -> int:
    return int(time.time())


def normalize_phone(value: str) -> str:
    """Digits only; a Russian 8XXXXXXXXXX becomes 7XXXXXXXXXX, as amoCRM's duplicate control matches them."""
    digits = re.sub(r"\D", "", str(value))
    if len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    return digits


class SandboxState:
    def __init__(self, config: dict):
        self.lock = threading.RLock()
        self.base_config = config
        self.reset()

    # -- lifecycle --------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.config = {key: self.base_config[key] for key in DEFAULT_CONFIG}
            self.faults = dict(NO_FAULTS)
            self.generation = getattr(self, "generation", 0) + 1  # lets the webhook sender drop stale jobs
            self._ids = {
                "account": 31000000,
                "user": 9000000,
                "pipeline": 7000000,
                "status": 50000000,
                "field": 600000,
                "enum": 900000,
                "lead": 20000000,
                "contact": 40000000,
                "company": 45000000,
                "note": 70000000,
                "task": 80000000,
                "unsorted": 0,
                "link": 0,
                "tag": 10000,
                "webhook": 0,
                "delivery": 0,
                "event": 0,
            }
            self.accounts: dict[int, dict] = {}
            self.integrations: dict[str, dict] = {}
            self.codes: dict[str, dict] = {}
            self.access_tokens: dict[str, dict] = {}
            self.refresh_tokens: dict[str, dict] = {}
            self.leads: dict[int, dict] = {}
            self.contacts: dict[int, dict] = {}
            self.companies: dict[int, dict] = {}
            self.notes: dict[int, dict] = {}
            self.tasks: dict[int, dict] = {}
            self.events: list[dict] = []
            self.unsorted: dict[str, dict] = {}
            # (kind, id) → [(visible_from, texts)]: what ``query=`` sees, lagging writes by the index delay.
            self.search_index: dict[tuple, list] = {}
            # caller address → [monotonic times of recent 429s]; caller address → monotonic end of a block.
            self.excess: dict[str, list] = {}
            self.blocked_until: dict[str, float] = {}
            self.webhooks: dict[int, dict] = {}
            self.deliveries: deque = deque(maxlen=MAX_DELIVERIES)
            self.buckets: dict[str, list] = {}
            self.reset_counters()
            self.create_account(name="Leadpath Sandbox", subdomain="sandbox", duplicate_control=True)
            integrations = self.config["SANDBOX_INTEGRATIONS"]
            for item in integrations if integrations is not None else [DEFAULT_INTEGRATION]:
                self.create_integration(**item)

    def reset_counters(self) -> None:
        with self.lock:
            self.counters = {"requests": {}, "requests_by_account": {}}
            self.counters.update({name: 0 for name in COUNTER_NAMES})

    def count(self, name: str, key=None) -> None:
        with self.lock:
            if key is None:
                self.counters[name] += 1
            else:
                bucket = self.counters[name]
                bucket[str(key)] = bucket.get(str(key), 0) + 1

    def next_id(self, kind: str) -> int:
        with self.lock:
            self._ids[kind] += 1
            return self._ids[kind]

    # -- accounts ---------------------------------------------------------------------------------

    def create_account(
        self, name=None, subdomain=None, duplicate_control=False, tracking_fields=None, **settings
    ) -> dict:
        """A new account; ``settings`` are the per-account keys of ``ACCOUNT_SETTINGS`` (defaults from config)."""
        with self.lock:
            account_id = self.next_id("account")
            account = {
                "id": account_id,
                "name": name or f"Sandbox account {account_id}",
                "subdomain": subdomain or f"sandbox{account_id}",
                "currency": "RUB",
                "currency_symbol": "₽",
                "country": "RU",
                "timezone": "Europe/Moscow",
                "timezone_offset": "+03:00",
                "created_at": now(),
                "duplicate_control": bool(duplicate_control),
                "settings": self.default_settings(),
                "host": None,
                "previous_hosts": [],
            }
            account["settings"].update(settings)
            account["users"] = [
                self._user(account_id, "Администратор", "admin", True),
                self._user(account_id, "Менеджер", "manager", False),
            ]
            account["pipelines"] = [
                self._pipeline(
                    account_id, "Воронка", True, ["Первичный контакт", "Переговоры", "Принимают решение"]
                ),
                self._pipeline(account_id, "Партнёры", False, ["Квалификация", "Договор"]),
            ]
            codes = TRACKING_FIELD_CODES if tracking_fields is None else tracking_fields
            account["lead_fields"] = [
                self._field(account_id, "leads", code.lower(), "tracking_data", code) for code in codes
            ]
            account["lead_fields"] += [
                self._field(account_id, "leads", name_, type_, None, enums)
                for name_, type_, enums in SEED_LEAD_FIELDS
            ]
            account["contact_fields"] = [
                self._field(account_id, "contacts", "Телефон", "multitext", "PHONE", PHONE_ENUMS),
                self._field(account_id, "contacts", "Email", "multitext", "EMAIL", EMAIL_ENUMS),
                self._field(account_id, "contacts", "Должность", "text", "POSITION"),
            ]
            account["company_fields"] = [
                self._field(account_id, "companies", "Телефон", "multitext", "PHONE", PHONE_ENUMS),
                self._field(account_id, "companies", "Email", "multitext", "EMAIL", EMAIL_ENUMS),
                self._field(account_id, "companies", "Web", "url", "WEB"),
            ]
            self.accounts[account_id] = account
            return account

    def default_settings(self) -> dict:
        return {
            "search_index_delay": float(self.config["SANDBOX_SEARCH_INDEX_DELAY"]),
            "list_filters": self.config["SANDBOX_LIST_FILTERS"],
            "duplicate_rules": ["phone", "email"],
            "is_admin": True,
            "denied": [],
            "platform": "amocrm",
            "unsorted_decline_methods": ["DELETE"],
            "unsorted_decline_outcome": "delete",
        }

    def _user(self, account_id, name, login, is_admin):
        user_id = self.next_id("user")
        return {
            "id": user_id,
            "name": name,
            "email": f"{login}{user_id}@sandbox.example",
            "lang": "ru",
            "rights": {"is_admin": is_admin, "is_free": False, "is_active": True},
        }

    def _pipeline(self, account_id, name, is_main, working_statuses):
        pipeline_id = self.next_id("pipeline")
        statuses = [(self.next_id("status"), "Неразобранное", 1, "#c1c1c1")]
        statuses += [(self.next_id("status"), title, 0, "#99ccff") for title in working_statuses]
        statuses += [
            (WON_STATUS_ID, "Успешно реализовано", 0, "#CCFF66"),
            (LOST_STATUS_ID, "Закрыто и не реализовано", 0, "#D5D8DB"),
        ]
        return {
            "id": pipeline_id,
            "name": name,
            "sort": 1 if is_main else 2,
            "is_main": is_main,
            "is_unsorted_on": True,
            "is_archive": False,
            "account_id": account_id,
            "statuses": [
                {
                    "id": status_id,
                    "name": title,
                    "sort": 10 * (index + 1),
                    "is_editable": status_id not in (WON_STATUS_ID, LOST_STATUS_ID) and kind != 1,
                    "pipeline_id": pipeline_id,
                    "color": color,
                    "type": kind,
                    "account_id": account_id,
                }
                for index, (status_id, title, kind, color) in enumerate(statuses)
            ],
        }

    def new_field(self, account_id, entity_type, name, field_type, code, enum_values=None) -> dict:
        with self.lock:
            return self._field(account_id, entity_type, name, field_type, code, enum_values)

    def _field(self, account_id, entity_type, name, field_type, code, enum_codes=None):
        enums = None
        if enum_codes:
            enums = [
                {"id": self.next_id("enum"), "value": enum_code, "sort": 2 * (index + 1)}
                for index, enum_code in enumerate(enum_codes)
            ]
        return {
            "id": self.next_id("field"),
            "name": name,
            "type": field_type,
            "account_id": account_id,
            "code": code,
            "sort": 500,
            "is_api_only": False,
            "enums": enums,
            "group_id": None,
            "required_statuses": [],
            "is_deletable": code is None,
            "is_predefined": code is not None,
            "entity_type": entity_type,
            "remind": None,
            "tracking_callback": None,
            "search_in": None,
            "hidden_statuses": [],
        }

    def account(self, account_id) -> dict | None:
        try:
            return self.accounts.get(int(account_id))
        except (TypeError, ValueError):
            return None

    @staticmethod
    def main_pipeline(account: dict) -> dict:
        return next(p for p in account["pipelines"] if p["is_main"])

    @staticmethod
    def pipeline(account: dict, pipeline_id) -> dict | None:
        return next((p for p in account["pipelines"] if p["id"] == pipeline_id), None)

    # -- integrations -----------------------------------------------------------------------------

    def create_integration(
        self,
        name,
        redirect_uri,
        client_id=None,
        client_secret=None,
        secrets_uri=None,
        scopes=None,
        account_id=None,
        **extra,
    ) -> dict:
        with self.lock:
            integration = {
                "client_id": client_id or str(uuid.uuid4()),
                "client_secret": client_secret or secrets.token_urlsafe(48),
                "redirect_uri": redirect_uri,
                "name": name,
                "secrets_uri": secrets_uri,
                "scopes": list(scopes or ["crm", "notifications"]),
                "account_id": account_id,
                "description": extra.get("description"),
                "created_at": now(),
            }
            self.integrations[integration["client_id"]] = integration
            return integration

    def public_state(self) -> dict:
        """Everything a test may want to look at, as plain JSON-able data."""
        with self.lock:
            return copy.deepcopy(
                {
                    "accounts": list(self.accounts.values()),
                    "integrations": list(self.integrations.values()),
                    "leads": list(self.leads.values()),
                    "contacts": list(self.contacts.values()),
                    "webhooks": list(self.webhooks.values()),
                    "deliveries": list(self.deliveries),
                    "counters": self.counters,
                    "faults": self.faults,
                    "config": {key[len("SANDBOX_") :].lower(): value for key, value in self.config.items()},
                    "tokens": {
                        "access": len(self.access_tokens),
                        "refresh": len(self.refresh_tokens),
                        "codes": len(self.codes),
                    },
                }
            )
