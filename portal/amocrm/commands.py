"""`flask --app wsgi sync push WORKSPACE | prune-log`."""
import click
from flask import current_app
from flask.cli import AppGroup

from portal.tenancy import workspace_id_for

sync_cli = AppGroup("sync", help="Lead sync with amoCRM.")


def find_workspace_id(reference: str) -> int:
    workspace_id = workspace_id_for(reference)
    if workspace_id is None:
        raise click.BadParameter(f"no workspace {reference!r}")
    return workspace_id


@sync_cli.command("push")
@click.argument("workspace")
def push(workspace: str) -> None:
    """Push WORKSPACE's pending leads now, in this process."""
    from portal.amocrm.jobs import push_leads

    click.echo(push_leads(find_workspace_id(workspace)))


@sync_cli.command("prune-log")
@click.option("--days", type=int, default=None, help="Keep this many days (default SYNC_LOG_RETENTION_DAYS).")
def prune_log(days: int | None) -> None:
    """Delete sync log rows, and the bodies of webhook events processed or ignored, older than the retention
    period."""
    from portal.amocrm.sync_admin import prune_sync_log

    log_rows, events = prune_sync_log(days if days is not None else current_app.config["SYNC_LOG_RETENTION_DAYS"])
    click.echo(f"removed {log_rows} sync log rows and {events} webhook events")
