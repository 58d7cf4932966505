from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

from portal.passwords import MAX_LENGTH, WeakPassword, check_new_password


def acceptable_password(form, field) -> None:
    """The password rules of portal.passwords (length, not a common or breached password, not the e-mail)."""
    email = form.email.data if "email" in form else getattr(form, "account_email", "")
    try:
        check_new_password(field.data or "", email or "")
    except WeakPassword as error:
        raise ValidationError(str(error)) from error


PASSWORD_RULES = [DataRequired(), acceptable_password]


class SignupForm(FlaskForm):
    workspace_name = StringField(_l("Company or workspace name"), validators=[DataRequired(), Length(max=120)])
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("Work e-mail"), validators=[DataRequired(), Email(check_deliverability=False),
                                                  Length(max=254)])
    password = PasswordField(_l("Password"), validators=PASSWORD_RULES)
    confirm = PasswordField(_l("Repeat password"), validators=[DataRequired(), EqualTo("password",
                                                           message=_l("The passwords differ."))])


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=MAX_LENGTH)])
    remember = BooleanField(_l("Remember me"))


class AcceptInviteForm(FlaskForm):
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=120)])
    password = PasswordField(_l("Password"), validators=PASSWORD_RULES)
    confirm = PasswordField(_l("Repeat password"), validators=[DataRequired(), EqualTo("password",
                                                           message=_l("The passwords differ."))])

    def __init__(self, account_email: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.account_email = account_email


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=MAX_LENGTH)])
    password = PasswordField(_l("New password"), validators=PASSWORD_RULES)
    confirm = PasswordField(_l("Repeat the new password"), validators=[DataRequired(), EqualTo(
        "password", message=_l("The passwords differ."))])

    def __init__(self, account_email: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.account_email = account_email


class EndOtherSessionsForm(FlaskForm):
    """A button: log out every other browser."""


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)],
                       filters=[lambda value: value.strip() if value else value])


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=PASSWORD_RULES)
    confirm = PasswordField(_l("Repeat the new password"), validators=[DataRequired(), EqualTo(
        "password", message=_l("The passwords differ."))])

    def __init__(self, account_email: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.account_email = account_email


class ResendVerificationForm(FlaskForm):
    """A button: send the e-mail confirmation link again."""
