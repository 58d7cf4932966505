"""Ad spend pages. Any member may manage spend: marketers enter it, it changes no account setting."""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.auth.decorators import permission_required
from portal.auth.permissions import CHANGE_SPEND
from portal.i18n import number
from portal.models import AdSpend
from portal.reports.csv_output import csv_response
from portal.reports.periods import PRESETS, parse_period, warn_about_period
from portal.spend.forms import ConfirmImportForm, EditSpendForm, ImportForm, SpendForm
from portal.spend.services import (
    COLUMNS,
    SpendError,
    add_spend,
    decode_upload,
    delete_spend,
    import_spend,
    iter_spend,
    preview_import,
    spend_page,
    update_spend,
)
from portal.tenancy import current_workspace_id, get_owned_or_404

bp = Blueprint("spend", __name__, url_prefix="/reports/spend")

MAX_PAGE = 1_000_000


def _render_index(form, status=200):
    warn_about_period(request.args)
    period = parse_period(request.args, current_user.workspace.timezone, default="90d")
    # Bounded: a huge ?page= made an OFFSET past PostgreSQL's bigint (a 500); past the last page is just empty.
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    rows, total_rows, total_amount = spend_page(current_workspace_id(), period, page)
    return render_template("spend/index.html", form=form, rows=rows, total_rows=total_rows,
                           total_amount=total_amount, period=period, presets=PRESETS, page=page,
                           import_form=ImportForm()), status


def _manual_row_or_404(spend_id: int) -> AdSpend:
    """Imported rows are read-only here: the next import would undo an edit (their tags are set per ad account)."""
    spend = get_owned_or_404(AdSpend, spend_id)
    if spend.imported:
        abort(404)
    return spend


@bp.get("")
@login_required
def index():
    return _render_index(SpendForm())


@bp.post("")
@permission_required(CHANGE_SPEND)
def add():
    form = SpendForm()
    if not form.validate_on_submit():
        return _render_index(form, 400)
    created, updated = add_spend(current_workspace_id(), form.date.data, form.date_to.data, form.utm_source.data,
                                 form.utm_medium.data, form.utm_campaign.data, form.amount.data)
    flash(_("Spend saved. New days: %(created)s, updated: %(updated)s.", created=number(created),
            updated=number(updated)), "success")
    return redirect(url_for("spend.index"))


@bp.route("/<int:spend_id>/edit", methods=["GET", "POST"])
@permission_required(CHANGE_SPEND)
def edit(spend_id: int):
    spend = _manual_row_or_404(spend_id)
    form = EditSpendForm(obj=spend)
    if form.validate_on_submit():
        try:
            update_spend(spend, form.date.data, form.utm_source.data, form.utm_medium.data, form.utm_campaign.data,
                         form.amount.data)
        except SpendError as error:
            form.date.errors.append(str(error))
        else:
            flash(_("Spend row updated."), "success")
            return redirect(url_for("spend.index"))
    return render_template("spend/edit.html", form=form, spend=spend), 400 if form.errors else 200


@bp.post("/<int:spend_id>/delete")
@permission_required(CHANGE_SPEND)
def delete(spend_id: int):
    delete_spend(_manual_row_or_404(spend_id))
    flash(_("Spend row deleted."), "info")
    return redirect(url_for("spend.index"))


@bp.post("/import")
@permission_required(CHANGE_SPEND)
def import_preview():
    form = ImportForm()
    if not form.validate_on_submit():
        flash(_("Choose a CSV file to import."), "error")
        return redirect(url_for("spend.index"))
    try:
        content = decode_upload(form.file.data.read())
    except SpendError as error:
        flash(str(error), "error")
        return redirect(url_for("spend.index"))
    return _render_preview(content, "")


def _render_preview(content: str, assigned_source: str):
    preview = preview_import(content, assigned_source)
    confirm = ConfirmImportForm(content=content, assigned_source=preview.assigned_source)
    return render_template("spend/import_preview.html", preview=preview, confirm=confirm, columns=COLUMNS)


@bp.post("/import/assign")
@permission_required(CHANGE_SPEND)
def import_assign_source():
    """The preview again, with a source given to the rows that have none."""
    form = ConfirmImportForm()
    if not form.validate_on_submit():
        flash(_("The import expired; upload the file again."), "error")
        return redirect(url_for("spend.index"))
    return _render_preview(form.content.data, form.assigned_source.data or "")


@bp.post("/import/confirm")
@permission_required(CHANGE_SPEND)
def import_confirm():
    form = ConfirmImportForm()
    if not form.validate_on_submit():
        flash(_("The import expired; upload the file again."), "error")
        return redirect(url_for("spend.index"))
    try:
        created, updated, skipped = import_spend(current_workspace_id(), form.content.data,
                                                 form.assigned_source.data or "")
    except SpendError as error:
        flash(str(error), "error")
        return redirect(url_for("spend.index"))
    flash(_("Imported. New rows: %(created)s, updated: %(updated)s, skipped with errors: %(skipped)s.",
            created=number(created), updated=number(updated), skipped=number(skipped)) if skipped else
          _("Imported. New rows: %(created)s, updated: %(updated)s.", created=number(created),
            updated=number(updated)), "success")
    return redirect(url_for("spend.index"))


@bp.get("/export.csv")
@login_required
def export_csv():
    period = parse_period(request.args, current_user.workspace.timezone) if request.args.get("period") or \
        request.args.get("from") else None
    rows = ([spend.date.isoformat(), spend.utm_source, spend.utm_medium, spend.utm_campaign, spend.amount]
            for spend in iter_spend(current_workspace_id(), period))
    return csv_response("ad-spend.csv", list(COLUMNS), rows)
