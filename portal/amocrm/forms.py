from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length


class PipelineForm(FlaskForm):
    target = SelectField("New leads go to", choices=[])


class LongLivedTokenForm(FlaskForm):
    base_domain = StringField("amoCRM address", validators=[DataRequired(), Length(max=255)],
                              render_kw={"placeholder": "example.amocrm.ru"})
    token = PasswordField("Long-lived token", validators=[DataRequired(), Length(max=4096)])
