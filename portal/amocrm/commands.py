"""amoCRM commands: `flask --app wsgi amocrm reconcile WORKSPACE [--since DATE]`, `flask --app wsgi sync push
WORKSPACE | prune-log`."""
import click
from flask import current_app
from flask.cli import AppGroup

from portal.amocrm.jobs import push_leads
from portal.amocrm.reconcile import parse_since, reconcile_workspace
from portal.amocrm.sync_admin import prune_sync_log
from portal.tenancy import workspace_id_for

amocrm_cli = AppGroup("amocrm", help="amoCRM maintenance.")
sync_cli = AppGroup("sync", help="Lead sync with amoCRM.")


def find_workspace_id(reference: str) -> int:
    workspace_id = workspace_id_for(reference)
    if workspace_id is None:
        raise click.BadParameter(f"no workspace {reference!r}")
    return workspace_id


@amocrm_cli.command("reconcile")
@click.argument("workspace")
@click.option("--since", help="ISO date or datetime (UTC); default: since the last run, or 90 days back.")
def reconcile(workspace: str, since: str | None) -> None:
    """Read back the deals amoCRM changed and apply them (WORKSPACE: id or public id), in this process."""
    try:
        parse_since(since)
    except ValueError as exc:
        raise click.BadParameter("use an ISO date like 2024-01-31", param_hint="--since") from exc
    workspace_id = workspace_id_for(workspace)
    if workspace_id is None:
        raise click.UsageError(f"no workspace {workspace!r}")
    counts = reconcile_workspace(workspace_id, since)
    click.echo(" ".join(f"{key}={value}" for key, value in counts.items()))


@sync_cli.command("push")
@click.argument("workspace")
def push(workspace: str) -> None:
    """Push WORKSPACE's pending leads now, in this process."""
    click.echo(push_leads(find_workspace_id(workspace)))


@sync_cli.command("prune-log")
@click.option("--days", type=int, default=None, help="Keep this many days (default SYNC_LOG_RETENTION_DAYS).")
def prune_log(days: int | None) -> None:
    """Delete sync log rows, and the bodies of webhook events processed or ignored, older than the retention
    period."""
    log_rows, events = prune_sync_log(days if days is not None else current_app.config["SYNC_LOG_RETENTION_DAYS"])
    click.echo(f"removed {log_rows} sync log rows and {events} webhook events")
