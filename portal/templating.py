"""Jinja filters and the navigation shared by every page."""
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from flask_login import current_user

# Feature blueprints appear in the navigation once they are registered.
NAV_ITEMS = [("dashboard.index", "Dashboard"), ("leads.index", "Leads"), ("reports.roi", "Reports"),
             ("settings.index", "Settings")]


def register_template_helpers(app: Flask) -> None:
    app.context_processor(_navigation)
    app.add_template_filter(money)
    app.add_template_filter(percent)
    app.add_template_filter(local_datetime, "datetime")


def _navigation() -> dict:
    registered = current_app.view_functions
    return {"nav_items": [item for item in NAV_ITEMS if item[0] in registered]}


def money(value, currency: str | None = None) -> str:
    if value is None:
        return "—"
    if currency is None and current_user and current_user.is_authenticated:
        currency = current_user.workspace.currency
    amount = Decimal(value)
    text = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    return f"{text.replace(',', ' ')} {currency or ''}".strip()


def percent(value) -> str:
    return "—" if value is None else f"{Decimal(value):.0f}%"


def local_datetime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "—"
    zone = "UTC"
    if current_user and current_user.is_authenticated:
        zone = current_user.workspace.timezone
    return value.astimezone(ZoneInfo(zone)).strftime(fmt)
