"""Accounts: sign-up, log-in and log-out, password reset and invitations."""
