"""Outgoing e-mail: the outbox (`outbox`), what each mail says (`messages`), SMTP delivery (`smtp`), the demo's
local SMTP server (`local_server`) and the demo's outbox page (`routes`)."""
