"""Everything about amoCRM: the wire library (`api`, no Flask or database), the connection and its tokens, the push
of leads with its rate limiter and sync log, the webhook inbox, deals as amoCRM last showed them, the webhook
subscription's health, reconciliation, and the job entry points. Views live in the `*routes` modules."""
