"""Deterministic daily figures for the ad-platform emulators: the same campaign and day always give the same
impressions, clicks and cost (in hundredths of the account's currency), so tests and benchmarks can recompute
what an emulator must have answered."""
import hashlib
from datetime import date


def daily_figures(seed: str, campaign_id: int | str, day: date) -> tuple[int, int, int]:
    """(impressions, clicks, cost in hundredths) of one campaign on one day; about one day in ten is idle."""
    digest = hashlib.sha256(f"{seed}:{campaign_id}:{day.isoformat()}".encode()).digest()
    number = int.from_bytes(digest[:16], "big")
    if number % 10 == 0:
        return 0, 0, 0
    impressions = 100 + number % 20_000
    clicks = (number >> 20) % (impressions // 25 + 1)
    hundredths = 1 + (number >> 40) % 5_000_00  # up to 5,000.00
    return impressions, clicks, hundredths
