import zoneinfo

import phonenumbers
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, ValidationError

CURRENCIES = ["RUB", "USD", "EUR", "KZT", "BYN", "UAH", "UZS", "GBP", "TRY", "AED", "BRL", "INR"]


class WorkspaceForm(FlaskForm):
    name = StringField("Workspace name", validators=[DataRequired(), Length(max=120)])
    currency = SelectField("Currency", choices=CURRENCIES)
    timezone = SelectField("Time zone", choices=sorted(zoneinfo.available_timezones()))
    country = StringField("Country for phone numbers (ISO code, e.g. RU)",
                          validators=[DataRequired(), Length(min=2, max=2)])

    def validate_country(self, field):
        """The default region of the lead form's phone numbers: one that phonenumbers knows."""
        if field.data.strip().upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValidationError("Enter a country code like RU, KZ or US.")


class InviteForm(FlaskForm):
    email = EmailField("Teammate's e-mail", validators=[DataRequired(), Email(check_deliverability=False),
                                                        Length(max=254)])

