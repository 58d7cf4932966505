"""CLI: `flask --app wsgi leads sweep`."""
import click
from flask.cli import with_appcontext

from portal.amocrm.push_sweeper import sweep_pending_leads, workspaces_with_overdue_leads


@click.group()
def leads() -> None:
    """Lead intake and delivery."""


@leads.command()
@click.option("--min-age", default=30, show_default=True, help="Only leads pending for longer (seconds).")
@with_appcontext
def sweep(min_age: int) -> None:
    """Schedule a push for every workspace with pending leads that are due (the periodic sweeper, by hand)."""
    overdue = workspaces_with_overdue_leads(min_age)
    scheduled = sweep_pending_leads(min_age)
    click.echo(f"Workspaces with overdue pending leads: {len(overdue)}; pushes scheduled: {len(scheduled)}.")
    if len(scheduled) < len(overdue):
        raise click.ClickException("Some pushes could not be scheduled: is Redis reachable?")
