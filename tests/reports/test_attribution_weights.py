"""Attribution models as pure functions: every model gives each lead exactly 1,000,000 millionths over its chain,
so leads and revenue sum to the same totals under every model — checked on thousands of seeded random chains —
and each model credits the touches its definition says."""
import random
from datetime import UTC, datetime, timedelta

import pytest

from portal.reports.attribution import (
    FIRST,
    LAST,
    LAST_NON_DIRECT,
    LINEAR,
    MODELS,
    TIME_DECAY,
    U_SHAPED,
    WHOLE,
    Touch,
    all_weights,
    is_direct,
    largest_remainder,
    weights,
)

LEAD_AT = datetime(2026, 11, 30, 12, tzinfo=UTC)


def chain_of(*specs) -> list[Touch]:
    """Touches from (days before the lead, direct) pairs, oldest first."""
    return [Touch((f"s{index}", "", "", "", "", "", ""), LEAD_AT - timedelta(days=days), direct)
            for index, (days, direct) in enumerate(specs)]


def random_chain(generator: random.Random) -> list[Touch]:
    length = generator.choice([1, 1, 2, 3, 4, 5, 7, 12, 40])
    ages = sorted((generator.uniform(0, 90) for _ in range(length)), reverse=True)
    if generator.random() < 0.2:
        ages = [ages[0]] * length  # same moment: ties everywhere
    return [Touch((generator.choice(["google", "yandex", "vk", ""]), "", "", "", "", "", ""),
                  LEAD_AT - timedelta(days=age), generator.random() < 0.4) for age in ages]


def test_every_model_sums_to_one_lead_exactly_on_random_chains():
    generator = random.Random(20261203)
    for _ in range(3000):
        chain = random_chain(generator)
        for model, shares in all_weights(chain, LEAD_AT).items():
            assert len(shares) == len(chain), model
            assert sum(shares) == WHOLE, (model, shares)
            assert all(share >= 0 for share in shares), (model, shares)


def test_a_report_of_random_leads_and_deals_has_the_same_totals_under_every_model():
    """Credit and revenue × credit summed per tag over 2,000 leads: per lead and in total every model agrees."""
    generator = random.Random(7)
    totals = {model: [0, 0] for model in MODELS}
    by_source = {model: {} for model in MODELS}
    revenue_cents = 0
    for _ in range(2000):
        chain = random_chain(generator)
        cents = generator.choice([0, 0, 1, 99_99, 1_234_567, 10**11 + 7])
        revenue_cents += cents
        for model, shares in all_weights(chain, LEAD_AT).items():
            assert sum(share * cents for share in shares) == cents * WHOLE
            totals[model][0] += sum(shares)
            totals[model][1] += sum(share * cents for share in shares)
            for touch, share in zip(chain, shares, strict=True):
                by_source[model][touch.tags[0]] = by_source[model].get(touch.tags[0], 0) + share * cents
    for model in MODELS:
        assert totals[model] == [2000 * WHOLE, revenue_cents * WHOLE], model
        assert sum(by_source[model].values()) == revenue_cents * WHOLE


def test_first_last_and_last_non_direct():
    ad_then_direct = chain_of((3, False), (1, True))
    assert weights(FIRST, ad_then_direct, LEAD_AT) == [WHOLE, 0]
    assert weights(LAST, ad_then_direct, LEAD_AT) == [0, WHOLE]
    assert weights(LAST_NON_DIRECT, ad_then_direct, LEAD_AT) == [WHOLE, 0]
    assert weights(LAST_NON_DIRECT, chain_of((3, False), (2, False), (1, True), (0, True)), LEAD_AT) == [
        0, WHOLE, 0, 0]
    # every visit direct: the last one
    assert weights(LAST_NON_DIRECT, chain_of((3, True), (1, True)), LEAD_AT) == [0, WHOLE]


@pytest.mark.parametrize("count, expected", [
    (1, [WHOLE]),
    (2, [500_000, 500_000]),
    (3, [400_000, 200_000, 400_000]),
    (4, [400_000, 100_000, 100_000, 400_000]),
    # 20 % over three: 66,666.67 each; the two millionths left go to the later ones
    (5, [400_000, 66_666, 66_667, 66_667, 400_000]),
])
def test_u_shaped(count, expected):
    assert weights(U_SHAPED, chain_of(*[(count - index, False) for index in range(count)]), LEAD_AT) == expected


def test_linear_splits_equally_and_gives_the_leftover_to_the_later_touches():
    assert weights(LINEAR, chain_of((2, False), (1, True)), LEAD_AT) == [500_000, 500_000]
    assert weights(LINEAR, chain_of((3, False), (2, False), (1, False)), LEAD_AT) == [333_333, 333_333, 333_334]


def test_time_decay_halves_the_weight_every_seven_days():
    shares = weights(TIME_DECAY, chain_of((14, False), (7, False), (0, False)), LEAD_AT)
    # 1/4 : 1/2 : 1 → 1/7, 2/7, 4/7
    assert shares == [142_857, 285_714, 571_429]
    # a visit stamped after the lead (clock skew) counts as age zero, not as more than whole
    skewed = [Touch(("a",) * 7, LEAD_AT + timedelta(hours=1)), Touch(("b",) * 7, LEAD_AT)]
    assert weights(TIME_DECAY, skewed, LEAD_AT) == [500_000, 500_000]


def test_rounding_is_deterministic_and_an_empty_chain_has_no_weights():
    chain = chain_of((5, False), (5, False), (5, False))
    assert weights(TIME_DECAY, chain, LEAD_AT) == weights(TIME_DECAY, list(chain), LEAD_AT) == [
        333_333, 333_333, 333_334]
    assert weights(LINEAR, [], LEAD_AT) == []
    assert largest_remainder([]) == []
    with pytest.raises(ValueError):
        weights("data_driven", chain, LEAD_AT)


def test_direct_means_no_tags_no_click_id_and_no_referrer_from_another_site():
    assert is_direct(("", None, "", "", ""), (None, None, None), "", "shop.example")
    assert is_direct((None,) * 5, (None,) * 3, "shop.example", "shop.example")  # a link within the site
    assert not is_direct(("google",), (), "", "")
    assert not is_direct((), ("Cj0KCQ",), "", "")
    assert not is_direct((), (), "google.com", "shop.example")
