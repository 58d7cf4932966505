"""The settings area: one `/settings` prefix and navigation; the workspace and team tabs are its own."""
