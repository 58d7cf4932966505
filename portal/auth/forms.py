from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

PASSWORD_RULES = [DataRequired(), Length(min=8, max=128, message="Use 8 to 128 characters.")]


class SignupForm(FlaskForm):
    workspace_name = StringField("Company or workspace name", validators=[DataRequired(), Length(max=120)])
    name = StringField("Your name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Work e-mail", validators=[DataRequired(), Email(check_deliverability=False),
                                                  Length(max=254)])
    password = PasswordField("Password", validators=PASSWORD_RULES)
    confirm = PasswordField("Repeat password", validators=[DataRequired(), EqualTo("password",
                                                           message="The passwords differ.")])


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=128)])
    remember = BooleanField("Remember me")


class AcceptInviteForm(FlaskForm):
    name = StringField("Your name", validators=[DataRequired(), Length(max=120)])
    password = PasswordField("Password", validators=PASSWORD_RULES)
    confirm = PasswordField("Repeat password", validators=[DataRequired(), EqualTo("password",
                                                           message="The passwords differ.")])
