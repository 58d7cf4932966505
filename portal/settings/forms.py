import zoneinfo

import phonenumbers
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, ValidationError

from portal.i18n import LANGUAGES, browser_language
from portal.visits.retention import MAX_RETENTION_DAYS, MIN_RETENTION_DAYS, RetentionInvalid, check_retention_days

CURRENCIES = ["RUB", "USD", "EUR", "KZT", "BYN", "UAH", "UZS", "GBP", "TRY", "AED", "BRL", "INR"]


class WorkspaceForm(FlaskForm):
    name = StringField(_l("Workspace name"), validators=[DataRequired(), Length(max=120)])
    currency = SelectField(_l("Currency"), choices=CURRENCIES)
    timezone = SelectField(_l("Time zone"), choices=sorted(zoneinfo.available_timezones()))
    country = StringField(_l("Country for phone numbers (ISO code, e.g. RU)"),
                          validators=[DataRequired(), Length(min=2, max=2)])

    visit_retention_days = IntegerField(
        _l("Keep visits for (days)"),
        description=_l("Visits older than this are deleted every night; leads keep their own tags. "
                       "%(min)s to %(max)s days.", min=MIN_RETENTION_DAYS, max=MAX_RETENTION_DAYS),
        render_kw={"min": MIN_RETENTION_DAYS, "max": MAX_RETENTION_DAYS, "inputmode": "numeric"})

    def validate_visit_retention_days(self, field):
        try:
            check_retention_days(field.data)
        except RetentionInvalid as error:
            raise ValidationError(str(error)) from None

    def validate_country(self, field):
        """The default region of the lead form's phone numbers: one that phonenumbers knows."""
        if field.data.strip().upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValidationError(_("Enter a country code like RU, KZ or US."))


class InviteForm(FlaskForm):
    email = EmailField(_l("Teammate's e-mail"), validators=[DataRequired(), Email(check_deliverability=False),
                                                        Length(max=254)])


class LanguageForm(FlaskForm):
    """The user's own language (not the workspace's): "" follows the browser."""
    locale = SelectField(_l("Language"), choices=[])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        automatic = _("As the browser asks (now: %(language)s)", language=LANGUAGES[browser_language()])
        self.locale.choices = [("", automatic), *LANGUAGES.items()]
