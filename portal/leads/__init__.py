"""Leads: the list, a lead's page, CSV export and spam marking."""
