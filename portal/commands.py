"""CLI: `flask --app wsgi demo | worker | scheduler | leads | amocrm | sync | demo-data | keys | reports`.

Commands import what only they need (the demo's sandbox, the worker, the scheduler, demo data) when they run:
every web process builds this CLI with the app, and must not pay for them at start-up.
"""
import hashlib
import logging
import os
import sys
import time

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from portal.amocrm.commands import amocrm_cli, sync_cli
from portal.auth.services import sign_up
from portal.crypto import reencrypt_all
from portal.extensions import db
from portal.intake.commands import leads
from portal.jobs.queues import QUEUE_NAMES
from portal.models import User
from portal.models.types import utcnow
from portal.reports.commands import reports_cli
from portal.tenancy import workspace_id_for

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo12345"
DEMO_HOST = "127.0.0.1"
DEMO_PORT = 5000
SANDBOX_PORT = 5001

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    app.cli.add_command(demo)
    app.cli.add_command(worker)
    app.cli.add_command(scheduler)
    app.cli.add_command(amocrm_cli)
    app.cli.add_command(sync_cli)
    app.cli.add_command(leads)
    app.cli.add_command(demo_data)
    app.cli.add_command(keys)
    app.cli.add_command(reports_cli)


def seed_demo_workspace() -> tuple[bool, object]:
    """The demo owner and workspace, created once. Returns (created, user)."""
    user = db.session.scalar(select(User).where(User.email == DEMO_EMAIL))
    if user is not None:
        return False, user
    user = sign_up("Demo workspace", "Demo Owner", DEMO_EMAIL, DEMO_PASSWORD)
    user.email_verified_at = utcnow()  # a made-up address: no mail can confirm it
    db.session.commit()
    return True, user


@click.command()
@click.option("--port", default=DEMO_PORT, show_default=True)
@click.option("--sandbox-port", default=SANDBOX_PORT, show_default=True)
@click.option("--ad-sandbox-port", default=0, show_default=True,
              help="Port of the Yandex Direct sandbox (Yandex ID OAuth and the Direct API); 0 picks a free port.")
@click.option("--vk-sandbox-port", default=0, show_default=True,
              help="Port of the VK Ads sandbox; 0 picks a free port.")
@click.option("--google-sandbox-port", default=0, show_default=True,
              help="Port of the Google Ads sandbox; 0 picks a free port.")
@with_appcontext
def demo(port: int, sandbox_port: int, ad_sandbox_port: int, vk_sandbox_port: int, google_sandbox_port: int) -> None:
    """Run everything in one process on SQLite: migrate, seed, start the worker and serve."""
    from flask_migrate import upgrade
    from werkzeug.serving import run_simple

    from portal.jobs.worker import start_in_process
    from portal.periodic_jobs import PERIODIC_JOBS

    app = current_app._get_current_object()
    if app.config["REDIS_URL"]:
        click.echo("REDIS_URL is set: the demo runs its own in-process queue; unset it to run the demo.", err=True)
        sys.exit(2)
    upgrade()
    created, user = seed_demo_workspace()
    if created:
        from portal.reports.demo_data import seed_demo_data

        seed_demo_data(user.workspace_id)
    # The sandbox first: the worker's first jobs already need the amoCRM settings that point at it (plain http).
    sandbox_url = start_demo_sandbox(app, port, sandbox_port)
    ad_sandbox_urls = start_demo_ad_sandboxes(app, port, ad_sandbox_port, vk_sandbox_port, google_sandbox_port)
    smtp_note = start_demo_mail(app)
    start_in_process(app, PERIODIC_JOBS)
    click.echo("")
    click.echo(f"  Leadpath demo: http://{DEMO_HOST}:{port}")
    click.echo(f"  Log in as {DEMO_EMAIL} / {DEMO_PASSWORD}" + (" (created)" if created else ""))
    click.echo(f"  amoCRM sandbox: {sandbox_url}/_sandbox/ (Settings → amoCRM connects to it)")
    for name, url in ad_sandbox_urls.items():
        click.echo(f"  {name} sandbox: {url}/_sandbox/state (Settings → Ad accounts connects to it)")
    click.echo(f"  E-mails: http://{DEMO_HOST}:{port}/dev/outbox ({smtp_note})")
    click.echo(f"  Data is kept in {db.engine.url.database}; Ctrl+C stops.")
    click.echo("", nl=True)
    sys.stdout.flush()
    run_simple(DEMO_HOST, port, app, threaded=True, use_reloader=False, use_debugger=False)


def start_demo_mail(app: Flask) -> str:
    """Unless MAIL_SMTP_HOST points at a real server: a local SMTP server (aiosmtpd) that receives the demo's
    mails, which the outbox page (/dev/outbox) shows with their links. Returns what the console says of it."""
    from portal.mail.local_server import LocalSmtpServer

    if app.config["MAIL_SMTP_HOST"]:
        return f"sent through {app.config['MAIL_SMTP_HOST']}"
    server = LocalSmtpServer(DEMO_HOST).start()
    app.config.update(server.settings())
    app.config["MAIL_OUTBOX_PAGE"] = True
    return f"received by a local SMTP server on port {server.port}"


def demo_integration_keys(secret_key: str) -> tuple[str, str]:
    """The demo's shared integration: derived from the instance secret, so restarts keep connections valid."""
    digest = hashlib.sha256(("leadpath-demo-integration:" + secret_key).encode()).hexdigest()
    return f"leadpath-demo-{digest[:16]}", digest[16:]


def demo_sandbox_state_file(app: Flask) -> str:
    """Where the demo's sandbox keeps its state: beside the demo's SQLite file (instance/leadpath.db →
    instance/leadpath.amocrm-sandbox.json), so a fresh database also means a fresh amoCRM; else in instance/."""
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and url.database:
        return os.path.splitext(url.database)[0] + ".amocrm-sandbox.json"
    return os.path.join(app.instance_path, "amocrm-sandbox.json")


def start_demo_sandbox(app: Flask, port: int, sandbox_port: int) -> str:
    """Serve the amoCRM sandbox on `sandbox_port` with a shared integration for this portal, and point the
    portal's amoCRM settings (keys, both regions' button scripts and OAuth pages) at it. Its state (accounts,
    tokens, signing key, deals, id counters) is kept beside the demo's database, so a restarted demo keeps its
    connection and deals. Returns the sandbox URL."""
    from portal.sandbox import create_app as create_sandbox
    from portal.sandbox.server import serve_in_thread

    client_id, client_secret = demo_integration_keys(app.config["SECRET_KEY"])
    portal_url = f"http://{DEMO_HOST}:{port}"
    sandbox = create_sandbox({"SANDBOX_INTEGRATIONS": [{
        "client_id": client_id, "client_secret": client_secret, "name": "Leadpath (demo)",
        "redirect_uri": f"{portal_url}/amocrm/callback"}],
        "SANDBOX_STATE_FILE": demo_sandbox_state_file(app)})
    server = serve_in_thread(sandbox, DEMO_HOST, sandbox_port)
    app.config.update(
        AMOCRM_CLIENT_ID=client_id, AMOCRM_CLIENT_SECRET=client_secret,
        AMOCRM_BUTTON_SRC=f"{server.url}/auth/button.min.js", AMOCRM_OAUTH_URL=f"{server.url}/oauth",
        KOMMO_BUTTON_SRC=f"{server.url}/auth/button.js", KOMMO_OAUTH_URL=f"{server.url}/oauth",
        AMOCRM_DEV_HOSTS=[f"{DEMO_HOST}:{server.port}", f"localhost:{server.port}"],
        PUBLIC_BASE_URL=app.config.get("PUBLIC_BASE_URL") or portal_url)
    return server.url


def start_demo_ad_sandboxes(app: Flask, portal_port: int, yandex_port: int, vk_port: int,
                            google_port: int) -> dict[str, str]:
    """Serve the Yandex Direct, VK Ads and Google Ads sandboxes and point the portal's app settings of each at it,
    so Settings → Ad accounts → Connect works offline. Returns their URLs by platform name. Yandex's tokens are
    signed with a key derived from the instance secret, so a restarted demo's Yandex connection still works (the
    VK and Google sandboxes keep theirs in memory: after a restart they ask to be connected again). Accounts in
    other currencies convert at AD_SPEND_RATES, a demo rate unless set."""
    from portal.sandbox.google_ads import create_app as create_google_sandbox
    from portal.sandbox.server import serve_in_thread
    from portal.sandbox.vk_ads import create_app as create_vk_sandbox
    from portal.sandbox.yandex_direct import create_app as create_yandex_sandbox

    digest = hashlib.sha256(("leadpath-demo-ad-platforms:" + app.config["SECRET_KEY"]).encode()).hexdigest()
    client_id, client_secret = f"leadpath-demo-{digest[:16]}", digest[16:48]
    callbacks = {name: [f"http://{host}:{portal_port}/settings/ad-accounts/{name}/callback"
                        for host in (DEMO_HOST, "localhost")] for name in ("vk_ads", "google_ads")}
    yandex = serve_in_thread(create_yandex_sandbox({
        "YD_CLIENT_ID": client_id, "YD_CLIENT_SECRET": client_secret, "YD_TOKEN_KEY": digest[48:],
        "YD_ONLINE_MAX_ROWS": 500}), DEMO_HOST, yandex_port)
    vk = serve_in_thread(create_vk_sandbox({
        "VK_SANDBOX_CLIENT_ID": client_id, "VK_SANDBOX_CLIENT_SECRET": client_secret,
        "VK_SANDBOX_REDIRECT_URIS": callbacks["vk_ads"]}), DEMO_HOST, vk_port)
    google_client_id = f"{client_id}.apps.googleusercontent.com"
    google = serve_in_thread(create_google_sandbox({
        "GOOGLE_SANDBOX_CLIENT_ID": google_client_id, "GOOGLE_SANDBOX_CLIENT_SECRET": client_secret,
        "GOOGLE_SANDBOX_REDIRECT_URIS": callbacks["google_ads"]}), DEMO_HOST, google_port)
    app.config.update(
        YANDEX_DIRECT_CLIENT_ID=client_id, YANDEX_DIRECT_CLIENT_SECRET=client_secret,
        YANDEX_DIRECT_OAUTH_URL=yandex.url, YANDEX_DIRECT_API_URL=yandex.url,
        VK_ADS_CLIENT_ID=client_id, VK_ADS_CLIENT_SECRET=client_secret, VK_ADS_API_URL=vk.url,
        VK_ADS_OAUTH_URL=f"{vk.url}/hq/settings/access",
        GOOGLE_ADS_CLIENT_ID=google_client_id, GOOGLE_ADS_CLIENT_SECRET=client_secret, GOOGLE_ADS_API_URL=google.url,
        GOOGLE_ADS_OAUTH_URL=f"{google.url}/o/oauth2/v2/auth", GOOGLE_ADS_TOKEN_URL=f"{google.url}/token",
        AD_SPEND_RATES=app.config["AD_SPEND_RATES"] or "USD:RUB=90,EUR:RUB=100")
    return {"Yandex Direct": yandex.url, "VK Ads": vk.url, "Google Ads": google.url}


@click.command()
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Jobs run at once in this process (amoCRM pushes mostly wait on the network and rate limit).")
@with_appcontext
def worker(queues: tuple[str, ...], burst: bool, threads: int) -> None:
    """Run an RQ worker (queues: amocrm webhooks default adspend; all by default)."""
    from portal.jobs.worker import keep_working, run_threaded

    if not current_app.config["REDIS_URL"]:
        raise click.UsageError("REDIS_URL is not set (the demo runs its own in-process worker).")
    unknown = set(queues) - set(QUEUE_NAMES)
    if unknown:
        raise click.UsageError(f"unknown queue(s): {', '.join(sorted(unknown))}; choose from {', '.join(QUEUE_NAMES)}")
    app = current_app._get_current_object()
    if threads > 1:
        if 2 * threads > app.config["DATABASE_POOL_SIZE"] and app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_size"):
            click.echo(f"warning: {threads} threads may hold {2 * threads} database connections; DATABASE_POOL_SIZE is "
                       f"{app.config['DATABASE_POOL_SIZE']}, so some will be opened and closed all the time", err=True)
        run_threaded(app, queues or QUEUE_NAMES, threads, burst=burst)
        return
    keep_working(app, queues or QUEUE_NAMES, burst=burst, logging_level=app.config["LOG_LEVEL"], with_scheduler=True)


@click.command()
@with_appcontext
def scheduler() -> None:
    """Enqueue the periodic jobs (sweeps, token refresh, reconciliation) on time."""
    from portal.jobs import scheduler as periodic
    from portal.periodic_jobs import PERIODIC_JOBS

    if not current_app.config["REDIS_URL"]:
        raise click.UsageError("REDIS_URL is not set (the demo runs its own in-process scheduler).")
    periodic.run(current_app._get_current_object(), PERIODIC_JOBS)


@click.command("demo-data")
@click.argument("workspace")
@click.option("--leads", default=10000, show_default=True, help="How many leads to add.")
@click.option("--deals", "--sales", "deals", type=int, default=None, help="How many deals (default: leads / 10).")
@click.option("--spend-rows", type=int, default=None, help="Ad spend rows (default: up to 20,000).")
@click.option("--days", default=365, show_default=True, help="Spread over this many days up to today.")
@click.option("--seed", type=int, default=None, help="Random seed, for repeatable data.")
@click.option("--visitors-per-lead", type=float, default=8.0, show_default=True,
              help="Visitors who never send a form, per lead (0: no visits at all).")
@with_appcontext
def demo_data(workspace: str, leads: int, deals: int | None, spend_rows: int | None, days: int,
              seed: int | None, visitors_per_lead: float) -> None:
    """Fill WORKSPACE (id or public id) with synthetic leads, visits, deals and ad spend."""
    from portal.reports.credits import attribute_backlog
    from portal.reports.demo_data import generate

    workspace_id = workspace_id_for(workspace)
    if workspace_id is None:
        raise click.UsageError(f"no workspace {workspace!r} (give its id or public id)")
    if leads < 0 or days < 1 or visitors_per_lead < 0:
        raise click.UsageError("--leads and --visitors-per-lead must be ≥ 0 and --days ≥ 1")
    started = time.monotonic()
    counts = generate(workspace_id, leads, deals, spend_rows, days, seed, visitors_per_lead)
    click.echo(f"Added {counts['leads']} leads, {counts['visits']} visits, {counts['deals']} deals, "
               f"{counts['spend_rows']} spend rows to workspace {workspace_id} in {time.monotonic() - started:.1f}s.")
    # The periodic attribution looks only at recent leads: these spread over past days are attributed here.
    started = time.monotonic()
    attributed = attribute_backlog(workspace_id)
    click.echo(f"Attributed {attributed} leads over their visits in {time.monotonic() - started:.1f}s.")


@click.group()
def keys() -> None:
    """Encryption key maintenance."""


@keys.command("rotate")
@with_appcontext
def rotate_keys() -> None:
    """Re-encrypt every stored secret with the first key of ENCRYPTION_KEYS (then older keys can be removed)."""
    try:
        rewritten = reencrypt_all(db.session)
    except RuntimeError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    for name, count in rewritten.items():
        click.echo(f"{name}: {count} re-encrypted")
    click.echo(f"done: {sum(rewritten.values())} value(s) now under the primary key")
