"""Who may change what: the one permission matrix. Every state-changing route declares the permission it needs
(portal.auth.decorators.permission_required); tests/auth/test_roles.py fails for a state-changing route without one.

Owners run the workspace. Members read everything (leads, reports, settings) and change nothing that belongs to
the workspace: not a lead's spam mark (it closes the deal as lost in amoCRM), not a retry, not ad spend, not a
setting. What is their own (password, sessions, logging out) they manage themselves.
"""
from portal.models.user import MEMBER, OWNER

ACCOUNT = "account"  # one's own password and sessions, logging out
CHANGE_WORKSPACE = "workspace.change"  # name, currency, time zone, country
MANAGE_TEAM = "team.manage"  # invites, removing teammates
MANAGE_AMOCRM = "amocrm.manage"  # connecting, pipeline, webhook secret, tokens, resuming the sync
MANAGE_LEAD_FORM = "lead_form.manage"  # the snippet's allowed origins and duplicate window
MANAGE_API_TOKENS = "api_tokens.manage"
CHANGE_LEADS = "leads.change"  # spam marks, retrying delivery to amoCRM
CHANGE_SPEND = "spend.change"  # ad spend: add, edit, delete, import
MANAGE_AD_ACCOUNTS = "ad_accounts.manage"  # connecting ad platforms, their accounts' import and tags

PERMISSIONS = {ACCOUNT, CHANGE_WORKSPACE, MANAGE_TEAM, MANAGE_AMOCRM, MANAGE_LEAD_FORM, MANAGE_API_TOKENS,
               CHANGE_LEADS, CHANGE_SPEND, MANAGE_AD_ACCOUNTS}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    OWNER: frozenset(PERMISSIONS),
    MEMBER: frozenset({ACCOUNT}),
}


def role_has(role: str, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())
