"""ROI reports: the page, CSV, charts, the read-only JSON API and its tokens, and the report cache."""
