from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, DecimalField, HiddenField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, StopValidation, ValidationError


def finite(form, field) -> None:
    """NaN and infinities parse as decimals but are no amount (and break the range check)."""
    if field.data is not None and not field.data.is_finite():
        raise StopValidation(_("Enter an amount like 1500 or 1500.50."))


class SpendForm(FlaskForm):
    date = DateField(_l("Date (or the first day of a range)"), validators=[DataRequired()])
    date_to = DateField(_l("Last day of the range (optional: the amount is spread evenly over the days)"),
                        validators=[Optional()])
    # Spend without a source matches no leads: its ROI would be meaningless (the "(none)" row).
    utm_source = StringField(_l("Source (utm_source)"), validators=[
        DataRequired(_l("Enter the source this money was spent on, as in the ads' utm_source.")), Length(max=200)])
    utm_medium = StringField(_l("Medium (utm_medium)"), validators=[Length(max=200)])
    utm_campaign = StringField(_l("Campaign (utm_campaign)"), validators=[Length(max=200)])
    amount = DecimalField(_l("Amount"), places=2, validators=[finite, DataRequired(), NumberRange(min=0, max=10 ** 11)])

    def validate_date_to(self, field):
        if field.data and self.date.data and field.data < self.date.data:
            raise ValidationError(_("The last day cannot be before the first."))
        if field.data and self.date.data and (field.data - self.date.data).days > 366:
            raise ValidationError(_("A range can cover at most a year."))


class EditSpendForm(SpendForm):
    date_to = None


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file (or Excel’s “Unicode text”)"), validators=[FileRequired()])


class ConfirmImportForm(FlaskForm):
    content = HiddenField(validators=[DataRequired()])
    # The source the user assigned in the preview to rows without one ("" = none assigned: those rows are refused).
    assigned_source = StringField(_l("Source for the rows without one"), validators=[Optional(), Length(max=200)])
