from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, RadioField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from portal.models.ad_account import CAMPAIGN_BY_ID, CAMPAIGN_BY_NAME


class AccountSettingsForm(FlaskForm):
    enabled = BooleanField(_l("Import this account's spend"))
    utm_source = StringField(_l("utm_source of its ads"), validators=[DataRequired(), Length(max=200)])
    utm_medium = StringField(_l("utm_medium of its ads"), validators=[DataRequired(), Length(max=200)])
    campaign_tag = RadioField(_l("utm_campaign of its ads is the campaign's"), default=CAMPAIGN_BY_ID,
                              choices=[(CAMPAIGN_BY_ID, _l("id")), (CAMPAIGN_BY_NAME, _l("name"))])
    include_vat = BooleanField(_l("Costs include VAT"))


class CampaignTagsForm(FlaskForm):
    campaign_id = StringField(_l("Campaign id"), validators=[DataRequired(), Length(max=64)])
    utm_source = StringField(_l("utm_source"), validators=[DataRequired(), Length(max=200)])
    utm_medium = StringField(_l("utm_medium"), validators=[Optional(), Length(max=200)])
    utm_campaign = StringField(_l("utm_campaign"), validators=[Optional(), Length(max=200)])


class ImportHourForm(FlaskForm):
    hour = IntegerField(_l("Import spend every day at (hour, your workspace's time zone)"),
                        validators=[InputRequired(), NumberRange(min=0, max=23)])


class ConfirmForm(FlaskForm):
    """Only a CSRF token: buttons that change something."""
