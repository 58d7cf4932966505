"""Accounts: sign-up, log-in and log-out, accepting an invitation, and the owner-only guard."""
