"""Spend in the workspace's currency: exchange rates from AD_SPEND_RATES ("USD:RUB=92.5,EUR:RUB=100.1": one unit of
the first currency in the second). A pair given one way is used the other way too (1 / rate). A missing rate is an
error naming the setting to add — never a silent 1:1."""
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from portal.adplatforms.base import AdPlatformError

CENT = Decimal("0.01")


class MissingRate(AdPlatformError):
    """No rate between the account's and the workspace's currency."""

    kind = "missing_rate"


class UnreadableRates(AdPlatformError, ValueError):
    """AD_SPEND_RATES cannot be read; the message names the part."""

    kind = "unreadable_rates"


def parse_rates(text: str) -> dict[tuple[str, str], Decimal]:
    """The rates of AD_SPEND_RATES; UnreadableRates names the part that cannot be read."""
    rates: dict[tuple[str, str], Decimal] = {}
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            pair, value = part.split("=")
            source, target = (code.strip().upper() for code in pair.split(":"))
            rate = Decimal(value.strip())
        except (ValueError, InvalidOperation) as exc:
            raise UnreadableRates(f"AD_SPEND_RATES: cannot read {part!r}; write it like USD:RUB=92.5") from exc
        if len(source) != 3 or len(target) != 3 or not rate.is_finite() or rate <= 0:
            raise UnreadableRates(f"AD_SPEND_RATES: cannot read {part!r}; write it like USD:RUB=92.5")
        rates[(source, target)] = rate
    return rates


def rate_between(source: str, target: str, rates: dict[tuple[str, str], Decimal]) -> Decimal:
    source, target = source.upper(), target.upper()
    if source == target:
        return Decimal(1)
    if (source, target) in rates:
        return rates[(source, target)]
    if (target, source) in rates:
        return Decimal(1) / rates[(target, source)]
    raise MissingRate(f"No exchange rate from {source} to {target}: add {source}:{target}=<rate> to the "
                      f"AD_SPEND_RATES setting, then import again.", source=source, target=target)


def convert(amount: Decimal, rate: Decimal) -> Decimal:
    return (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)
