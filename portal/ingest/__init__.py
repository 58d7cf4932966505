"""The hot public endpoints (lead intake, amoCRM webhook acknowledgement), answered beneath Flask by one small
WSGI layer (`layer`) with its route table (`routes`) and its per-process workspace cache (`workspaces`)."""
