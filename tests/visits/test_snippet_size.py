"""The snippet stays small: every landing page downloads it, and no build step minifies it."""
import gzip
from pathlib import Path

SNIPPET = Path(__file__).resolve().parents[2] / "static" / "js" / "leadpath.js"
GZIPPED_BUDGET = 8 * 1024


def test_the_snippet_gzipped_is_at_most_8_kb():
    size = len(gzip.compress(SNIPPET.read_bytes(), compresslevel=9))
    assert size <= GZIPPED_BUDGET, f"leadpath.js is {size} bytes gzipped, over {GZIPPED_BUDGET}: keep the source tight"


def test_the_snippet_sends_visits_by_beacon_with_a_keepalive_fallback_and_knows_consent():
    source = SNIPPET.read_text()
    assert "navigator.sendBeacon(" in source and "keepalive: true" in source and "/api/visits" in source
    assert "data-consent" in source and "leadpath:consent" in source
