"""The dashboard: the workspace's leads, deals and sync health at a glance."""
