"""`flask reports rebuild | check | compact | attribute`: upkeep of the report rollups and credit rollups
(PostgreSQL), and attribution of leads not attributed yet."""
import sys
import time

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from portal.extensions import db
from portal.models import Workspace
from portal.reports import credits
from portal.reports.rollups import check, compact, rebuild, uses_rollup_table
from portal.tenancy import workspace_id_for


@click.group("reports")
def reports_cli() -> None:
    """Report rollups: rebuild from the base tables, check against them, fold deltas."""


def _workspaces(workspace: str | None) -> list[int]:
    if not uses_rollup_table():
        raise click.ClickException("report rollups live in PostgreSQL; on SQLite reports read the base tables")
    if workspace is None:
        return list(db.session.scalars(select(Workspace.id).order_by(Workspace.id)))
    workspace_id = workspace_id_for(workspace)
    if workspace_id is None:
        raise click.UsageError(f"no workspace {workspace!r} (give its id or public id)")
    return [workspace_id]


@reports_cli.command("rebuild")
@click.option("--workspace", default=None, help="One workspace (id or public id); default: all.")
@with_appcontext
def rebuild_command(workspace: str | None) -> None:
    """Recompute rollups and credit rollups from leads, credits, deals, visits and ad spend (safe while the app
    writes)."""
    for workspace_id in _workspaces(workspace):
        started = time.monotonic()
        written = rebuild(workspace_id)
        credited = credits.rebuild(workspace_id)
        click.echo(f"workspace {workspace_id}: {written} rollup rows, {credited} credit rollup rows in "
                   f"{time.monotonic() - started:.1f}s")


@reports_cli.command("check")
@click.option("--workspace", default=None, help="One workspace (id or public id); default: all.")
@with_appcontext
def check_command(workspace: str | None) -> None:
    """Compare rollups and credit rollups (every attribution model) with the base tables; exit 1 and list the
    differences if they disagree."""
    failed = False
    for workspace_id in _workspaces(workspace):
        problems = check(workspace_id) + credits.check(workspace_id)
        db.session.rollback()
        for problem in problems[:50]:
            click.echo(problem)
        if len(problems) > 50:
            click.echo(f"… and {len(problems) - 50} more")
        click.echo(f"workspace {workspace_id}: " + ("rollups agree with the base tables" if not problems
                                                   else f"{len(problems)} differences"))
        failed = failed or bool(problems)
    if failed:
        sys.exit(1)


@reports_cli.command("compact")
@click.option("--workspace", default=None, help="One workspace (id or public id); default: all.")
@with_appcontext
def compact_command(workspace: str | None) -> None:
    """Fold delta rows now (the scheduler does it every minute)."""
    for workspace_id in _workspaces(workspace):
        compact(workspace_id)
        credits.compact(workspace_id)
    click.echo("folded")


@reports_cli.command("attribute")
@click.option("--workspace", default=None, help="One workspace (id or public id); default: all.")
@with_appcontext
def attribute_command(workspace: str | None) -> None:
    """Attribute every lead that has no credits yet (after an upgrade; the scheduler does recent leads)."""
    if workspace is None:
        workspace_ids = list(db.session.scalars(select(Workspace.id).order_by(Workspace.id)))
    else:
        workspace_id = workspace_id_for(workspace)
        if workspace_id is None:
            raise click.UsageError(f"no workspace {workspace!r} (give its id or public id)")
        workspace_ids = [workspace_id]
    for workspace_id in workspace_ids:
        click.echo(f"workspace {workspace_id}: {credits.attribute_backlog(workspace_id)} leads attributed")
