"""Accounts on hosts of their own: each amoCRM account answers at its own domain, so an account created with
``own_host`` is served on a loopback port of its own (``127.0.0.1:<port>``), which becomes its ``referer``,
its tokens' ``base_domain`` and the host of its links. The API answers such an account only
there. Renaming the account (a new subdomain) moves it to a new port; the old one is kept in
``previous_hosts`` and its token endpoint answers 404 for the account, as a renamed account's old domain
does (PHP SDK #572: on 404/401 look the domain up with ``/oauth2/account/current/subdomain``).

The sandbox's own address (the one that is no account's host) plays amoCRM's API host (``api-a.amocrm.ru``): it
is the tokens' ``api_domain`` and the only address of the subdomain lookup, and it stays the same across renames.
"""

import threading

from .server import ThreadedServer


class AccountHosts:
    def __init__(self, app):
        self.app = app
        self.servers: dict[str, ThreadedServer] = {}
        self.lock = threading.Lock()
        self.shared_host: str | None = None  # the first address a request reached that is no account's host

    def note_request_host(self, host: str) -> None:
        if self.shared_host is None and host not in self.servers:
            self.shared_host = host

    def give_host(self, account: dict) -> str:
        server = ThreadedServer(self.app, "127.0.0.1", 0, owns_app=False).start()
        with self.lock:
            self.servers[f"127.0.0.1:{server.port}"] = server
        account["host"] = f"127.0.0.1:{server.port}"
        return account["host"]

    def move_host(self, account: dict) -> str:
        account["previous_hosts"].append(account["host"])
        return self.give_host(account)

    def stop(self) -> None:
        with self.lock:
            servers, self.servers = list(self.servers.values()), {}
        for server in servers:
            server.shutdown()


def account_at(state, host: str) -> tuple[dict | None, bool]:
    """(the account whose own host ``host`` is, whether ``host`` is one it had before a rename)."""
    for account in state.accounts.values():
        if account["host"] == host:
            return account, False
        if host in account["previous_hosts"]:
            return account, True
    return None, False
