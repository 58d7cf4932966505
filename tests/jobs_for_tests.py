"""Jobs used by the job-infrastructure tests (workers import them by dotted path)."""
from flask import current_app

from portal.extensions import db, redis_connection
from portal.models import Workspace


def record_workspace_name(workspace_id: int) -> str:
    """Reads the database through the app context and leaves a mark in Redis."""
    name = db.session.get(Workspace, workspace_id).name
    redis_connection.client.set(f"test:job-ran:{workspace_id}", f"{current_app.name}:{name}")
    return name


def slow_record(workspace_id: int) -> str:
    """record_workspace_name after a second of waiting (as on the network); notes when it ran."""
    import time

    started = time.time()
    time.sleep(1)
    redis_connection.client.set(f"test:job-span:{workspace_id}", f"{started} {time.time()}")
    return record_workspace_name(workspace_id)
