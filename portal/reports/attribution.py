"""Attribution models: how one lead's credit is split over the touches of its chain.

Pure: no Flask, no database. A chain is the lead's touches in time order (its visitor's visits up to the visit the
form was sent in, or the lead's own first-touch and last-touch tags; see portal.reports.credits); each model gives
every touch an integer weight in millionths, and the weights of one lead sum to exactly WHOLE under every model.
A lead's deal is split by the same weights, so revenue in (cents × millionths) sums exactly too.

Rounding: the exact shares are cut to whole millionths and the millionths left over go, one each, to the touches
with the largest cut-off remainders; equal remainders go to the later touch first (the more recent visit).
"""
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

WHOLE = 1_000_000
FIRST, LAST, LAST_NON_DIRECT, LINEAR, U_SHAPED, TIME_DECAY = (
    "first", "last", "last_non_direct", "linear", "u_shaped", "time_decay")
MODELS = (LAST_NON_DIRECT, FIRST, LAST, LINEAR, U_SHAPED, TIME_DECAY)
DEFAULT_MODEL = LAST_NON_DIRECT
# U-shaped: the first and the last touch get 40 % each, the touches between share 20 %.
U_ENDS = Fraction(2, 5)
TIME_DECAY_HALF_LIFE = timedelta(days=7)


@dataclass(frozen=True)
class Touch:
    """One step of a chain. tags: the normalised report levels (source, medium, campaign, content, term, landing
    path, referrer domain); direct: no UTM tag, no click id and no external referrer."""

    tags: tuple[str, ...]
    touched_at: datetime
    direct: bool = False


def is_direct(utm_tags: tuple, click_ids: tuple, referrer_domain: str, landing_domain: str) -> bool:
    """A visit without UTM tags and click ids whose referrer is absent or the landing page's own site."""
    if any((value or "").strip() for value in (*utm_tags, *click_ids)):
        return False
    return not referrer_domain or referrer_domain == landing_domain


def weights(model: str, chain: list[Touch], lead_at: datetime) -> list[int]:
    """The chain's weights under one model, in millionths, summing to WHOLE (an empty chain has none)."""
    count = len(chain)
    if count == 0:
        return []
    if model == FIRST:
        return _one_hot(count, 0)
    if model == LAST:
        return _one_hot(count, count - 1)
    if model == LAST_NON_DIRECT:
        credited = next((index for index in range(count - 1, -1, -1) if not chain[index].direct), count - 1)
        return _one_hot(count, credited)
    if model == LINEAR:
        return largest_remainder([Fraction(1, count)] * count)
    if model == U_SHAPED:
        if count <= 2:
            return largest_remainder([Fraction(1, count)] * count)
        middle = (1 - 2 * U_ENDS) / (count - 2)
        return largest_remainder([U_ENDS, *([middle] * (count - 2)), U_ENDS])
    if model == TIME_DECAY:
        half_life = TIME_DECAY_HALF_LIFE.total_seconds()
        decays = [2.0 ** (-max((lead_at - touch.touched_at).total_seconds(), 0.0) / half_life) for touch in chain]
        # Fractions of the floats themselves: exact arithmetic from here, so the rounding is deterministic.
        total = sum(Fraction(value) for value in decays)
        return largest_remainder([Fraction(value) / total for value in decays])
    raise ValueError(f"unknown attribution model {model!r}")


def all_weights(chain: list[Touch], lead_at: datetime) -> dict[str, list[int]]:
    return {model: weights(model, chain, lead_at) for model in MODELS}


def _one_hot(count: int, index: int) -> list[int]:
    return [WHOLE if position == index else 0 for position in range(count)]


def largest_remainder(shares: list[Fraction]) -> list[int]:
    """Whole millionths of shares that sum to 1: floors, then one more to each of the largest remainders (ties:
    the later position first) until the total is WHOLE."""
    exact = [share * WHOLE for share in shares]
    floors = [int(value) for value in exact]  # shares are never negative: int() is the floor
    left = WHOLE - sum(floors)
    order = sorted(range(len(shares)), key=lambda index: (exact[index] - floors[index], index), reverse=True)
    for index in order[:left]:
        floors[index] += 1
    return floors
