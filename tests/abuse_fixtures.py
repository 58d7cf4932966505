"""Shared by the abuse tests: the GET pages a logged-in owner can reach, generated from the URL map.

Rules with `<int:…>` arguments are filled with objects of the owner's own workspace, made by the factories of
test_tenancy.OBJECT_FACTORIES (one per argument name; test_tenancy fails when a new argument has none).
"""
from support import workspace_of
from test_tenancy import OBJECT_FACTORIES

# GET routes that are not pages: machine endpoints, files, redirects to amoCRM, and anonymous-only pages.
NOT_PAGES = {"static", "health.healthz", "health.readyz", "metrics.metrics", "connection.status",
             "connection.auth", "connection.callback", "auth.accept"}


def own_objects(app, owner_id: int, **overrides) -> dict:
    """One object per URL argument name in the owner's workspace: {"lead_id": 3, ...} (overrides win)."""
    from portal.extensions import db

    workspace_id = workspace_of(app, owner_id)
    ids = {}
    with app.app_context():
        for arg, factory in OBJECT_FACTORIES.items():
            if arg in overrides:
                continue
            row = factory(workspace_id, owner_id)
            if hasattr(row, "email") and arg == "user_id":
                row.email = f"own-{row.email}"
            db.session.add(row)
            db.session.flush()
            ids[arg] = row.id
        db.session.commit()
    return {**ids, **overrides}


def owner_pages(app, ids: dict, exclude=NOT_PAGES) -> list[tuple[str, str]]:
    """(endpoint, url) of every GET page (every GET route but `exclude`), with `ids` for the URL arguments."""
    pages = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in exclude:
            continue
        if set(rule.arguments) - set(ids):
            raise AssertionError(f"{rule.rule}: no object for {set(rule.arguments) - set(ids)}")
        pages.append((rule.endpoint, adapter.build(rule.endpoint, {arg: ids[arg] for arg in rule.arguments})))
    return sorted(pages)
