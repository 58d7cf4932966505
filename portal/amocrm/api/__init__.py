"""The amoCRM API v4 client: a plain library (no Flask, no database).

`errors` — the typed errors every caller handles; `client` — `AmoCRMClient` over a `TokenProvider`;
`oauth` — the token endpoint (code exchange, refresh), `referer` validation and base URLs; `payloads` — the
bodies the push sends; `webhook_bodies` — parsing amoCRM's webhook bodies into deal snapshots.
"""
