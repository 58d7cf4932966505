"""Visits: the snippet's beacon (one per arrival), stored by the ingest layer, pruned after each workspace's
retention."""
