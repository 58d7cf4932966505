from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length


class PipelineForm(FlaskForm):
    target = SelectField(_l("New leads go to"), choices=[])


class LongLivedTokenForm(FlaskForm):
    base_domain = StringField(_l("amoCRM address"), validators=[DataRequired(), Length(max=255)],
                              render_kw={"placeholder": "example.amocrm.ru"})
    token = PasswordField(_l("Long-lived token"), validators=[DataRequired(), Length(max=4096)])


class RegionForm(FlaskForm):
    """Settings → amoCRM: amoCRM or Kommo, chosen before connecting (portal.amocrm.regions)."""

    region = RadioField(_l("Where is your account?"), choices=[
        ("amocrm", _l("amoCRM (amocrm.ru, amocrm.com)")), ("kommo", _l("Kommo (kommo.com)"))],
        validators=[DataRequired()])


class DeliveryModeForm(FlaskForm):
    mode = RadioField(_l("Deliver new leads"), choices=[
        ("deal", _l("As a deal in the pipeline and stage chosen above")),
        ("unsorted", _l("To Unsorted, for a manager to accept or decline"))], validators=[DataRequired()])


class FieldMappingForm(FlaskForm):
    """Only its CSRF token: the rows (`name-<n>`, `field-<n>`) are as many as the extra fields seen, read by the
    view (`portal.amocrm.routes.save_field_mapping`)."""
