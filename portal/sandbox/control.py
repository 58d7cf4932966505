"""``SandboxControl``: a small requests client for the sandbox's control API (``/_sandbox/*``).

    control = SandboxControl(server.url)
    control.reset()
    url = control.authorize(client_id, state="abc")["redirect_url"]
    control.move_lead(lead_id, 142, price=50000)

Every method raises ``requests.HTTPError`` on a non-2xx answer and returns the decoded JSON.
"""

import requests


class SandboxControl:
    def __init__(self, base_url: str, session: requests.Session | None = None, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict | None = None):
        response = self.session.request(
            method, f"{self.base_url}/_sandbox/{path}", json=body, timeout=self.timeout
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def state(self) -> dict:
        return self._call("GET", "state")

    def counters(self) -> dict:
        return self.state()["counters"]

    def jwks(self) -> dict:
        return self._call("GET", "jwks")

    def reset(self) -> None:
        self._call("POST", "reset")

    def reset_counters(self) -> None:
        self._call("POST", "counters/reset")

    def config(self, **settings) -> dict:
        """Runtime config, e.g. ``config(access_token_ttl=2, webhook_retry_delays=[0.1])``."""
        return self._call("POST", "config", settings)

    def faults(self, **faults) -> dict:
        """Replace the fault set; ``faults()`` clears it."""
        return self._call("POST", "faults", faults)

    def authorize(self, client_id: str, state: str | None = None, account_id: int | None = None) -> dict:
        """Consent without a browser: ``{redirect_url, code, referer, client_id, account_id}``."""
        return self._call(
            "POST", "oauth/authorize", {"client_id": client_id, "state": state, "account_id": account_id}
        )

    def expire_tokens(self, account_id: int | None = None, client_id: str | None = None) -> dict:
        return self._call("POST", "tokens/expire", {"account_id": account_id, "client_id": client_id})

    def create_integration(
        self, name: str, redirect_uri: str, secrets_uri: str | None = None, **extra
    ) -> dict:
        return self._call(
            "POST",
            "integrations",
            {"name": name, "redirect_uri": redirect_uri, "secrets_uri": secrets_uri, **extra},
        )

    def create_account(
        self,
        name: str | None = None,
        subdomain: str | None = None,
        duplicate_control: bool = False,
        **settings,
    ) -> dict:
        """A new account. ``settings``: ``tracking_fields``, ``own_host`` and the keys of ``set_account``."""
        body = {"name": name, "subdomain": subdomain, "duplicate_control": duplicate_control, **settings}
        return self._call("POST", "accounts", body)

    def set_account(self, account_id: int, **settings) -> dict:
        """Per-account settings: ``search_index_delay`` (s), ``list_filters`` ("applied" | "ignored"),
        ``duplicate_control`` (bool), ``duplicate_rules`` (["phone", "email"]), ``is_admin`` (bool),
        ``denied`` (call kinds answered 403, e.g. ["leads:write", "webhooks"]), ``platform`` ("amocrm" |
        "kommo"), ``subdomain`` (a rename), ``name``."""
        return self._call("POST", f"accounts/{account_id}", settings)

    def set_duplicate_control(self, account_id: int, enabled: bool) -> dict:
        return self.set_account(account_id, duplicate_control=enabled)

    def main_account(self) -> dict:
        return self.state()["accounts"][0]

    def move_lead(
        self, lead_id: int, status_id: int, pipeline_id: int | None = None, price: int | None = None
    ) -> dict:
        body = {"status_id": status_id, "pipeline_id": pipeline_id, "price": price}
        return self._call("POST", f"leads/{lead_id}/status", body)

    def delete_lead(self, lead_id: int) -> None:
        self._call("DELETE", f"leads/{lead_id}")

    def leads(self) -> list:
        return self.state()["leads"]

    def unsorted(self) -> list:
        """Every Unsorted item, with its ``status``: new (waiting), accepted or declined."""
        return self._call("GET", "unsorted")

    def accept_unsorted(self, uid: str, status_id: int | None = None) -> dict:
        """A manager accepts the item in amoCRM's interface."""
        return self._call("POST", f"unsorted/{uid}/accept", {"status_id": status_id} if status_id else {})

    def decline_unsorted(self, uid: str) -> dict:
        """A manager declines the item."""
        return self._call("POST", f"unsorted/{uid}/decline", {})

    def deliveries(self) -> list:
        return self.state()["deliveries"]
