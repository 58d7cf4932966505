from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange

from portal.intake.services import MAX_DUPLICATE_WINDOW_HOURS


class LeadFormSettingsForm(FlaskForm):
    allowed_origins = TextAreaField(
        _l("Sites allowed to send leads (one origin per line, e.g. https://example.com; empty: any site)"),
        validators=[Length(max=5000)], render_kw={"rows": 4})
    duplicate_window_hours = IntegerField(
        _l("Duplicate window, hours (a repeat from the same phone or e-mail within it creates no new deal; 0: off)"),
        validators=[InputRequired(), NumberRange(min=0, max=MAX_DUPLICATE_WINDOW_HOURS)])
