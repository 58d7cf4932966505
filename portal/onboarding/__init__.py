"""A new workspace's way in: the setup checklist on the dashboard (`services`, `routes`) and the empty states of
the dashboard, leads, reports and spend pages (templates/onboarding), which say what to do next."""
