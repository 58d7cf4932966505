from datetime import date

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db

# The tag levels a rollup row is keyed by, in drill-down order (landing path and referrer domain stand beside the
# UTM tree). Values are normalised: trimmed, lower-cased, "" for none (see portal.reports.tags).
ROLLUP_LEVELS = ("source", "medium", "campaign", "content", "term", "landing_path", "referrer_domain")
# The figures a rollup row sums. "cohort_*": deals by their lead's creation day (a deal not from our form: its own
# creation day); "closed_*": won/lost deals by closing day, open deals by creation day. Money in cents.
ROLLUP_FIGURES = ("leads", "cohort_open", "cohort_won", "cohort_lost", "cohort_revenue", "closed_open",
                  "closed_won", "closed_lost", "closed_revenue", "spend")
# attribution: "b" — the row counts for last and first touch alike (the lead's first-touch tags equal its last,
# or it has none; deals not from our form; spend), "l" — last touch only, "f" — first touch only.
BOTH, LAST, FIRST = "b", "l", "f"
# sale_kind of deal figures: "n" — the first deal of its amoCRM contact (or a deal without one), "r" — a later deal
# of the same contact (a repeat sale); lead and spend rows hold "". A report of new or of repeat sales sums the
# rows of that kind and the "" rows (leads and spend stay whole).
NEW_SALE, REPEAT_SALE, NOT_A_SALE = "n", "r", ""


class RollupRow:
    """What both rollup tables hold: a workspace's day, delta or merged, the sale kind, the tag levels and the lead
    and deal figures (each table adds its own key and figures)."""

    id: Mapped[int] = mapped_column(BigInteger().with_variant(db.Integer, "sqlite"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    merged: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    sale_kind: Mapped[str] = mapped_column(String(1), server_default="")
    source: Mapped[str] = mapped_column(String(200), server_default="")
    medium: Mapped[str] = mapped_column(String(200), server_default="")
    campaign: Mapped[str] = mapped_column(String(200), server_default="")
    content: Mapped[str] = mapped_column(String(200), server_default="")
    term: Mapped[str] = mapped_column(String(200), server_default="")
    landing_path: Mapped[str] = mapped_column(String(200), server_default="")
    referrer_domain: Mapped[str] = mapped_column(String(200), server_default="")
    leads: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cohort_open: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cohort_won: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cohort_lost: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cohort_revenue: Mapped[int] = mapped_column(BigInteger, server_default="0")
    closed_open: Mapped[int] = mapped_column(BigInteger, server_default="0")
    closed_won: Mapped[int] = mapped_column(BigInteger, server_default="0")
    closed_lost: Mapped[int] = mapped_column(BigInteger, server_default="0")
    closed_revenue: Mapped[int] = mapped_column(BigInteger, server_default="0")


class ReportRollup(RollupRow, db.Model):
    """Per-day report figures of a workspace, kept by PostgreSQL triggers on leads, deals and ad spend.

    Writes append signed delta rows (merged = false); `portal.reports.rollups.compact` folds them into one merged
    row per key. A report sums both kinds, so it is right before and after folding. On SQLite (demo, smoke tests)
    the table stays empty and reports group the base tables instead.
    """

    __tablename__ = "report_rollups"
    __table_args__ = (
        Index("ix_report_rollups_workspace_day", "workspace_id", "day"),
        Index("uq_report_rollups_merged_key", "workspace_id", "day", "attribution", "sale_kind", *ROLLUP_LEVELS,
              unique=True,
              postgresql_where=text("merged"), sqlite_where=text("merged")),
        Index("ix_report_rollups_deltas", "workspace_id", postgresql_where=text("NOT merged"),
              sqlite_where=text("NOT merged")),
    )

    attribution: Mapped[str] = mapped_column(String(1))
    spend: Mapped[int] = mapped_column(BigInteger, server_default="0")


# Credit rollups: the figures split by attribution model. model is one model's code, "*" (the row counts in
# every model: visits, deals not from our form, a touch every model credits whole) or "R" (every model but first:
# a lead not attributed yet counts its last touch there and its first touch under "F").
MODEL_CODES = {"first": "F", "last": "L", "last_non_direct": "N", "linear": "A", "u_shaped": "U",
               "time_decay": "T"}
EVERY_MODEL, EVERY_MODEL_BUT_FIRST = "*", "R"
# Visits are whole counts; leads and deal counts are in millionths of a lead or deal, revenue in cents × millionths.
CREDIT_FIGURES = ("visits", "leads", "cohort_open", "cohort_won", "cohort_lost", "cohort_revenue", "closed_open",
                  "closed_won", "closed_lost", "closed_revenue")


# grain: every fact is kept twice — "w" with every level, "n" with only source, medium and campaign (content, term,
# landing path and referrer domain ""). A report of the upper levels sums the few "n" rows, not the many "w" ones.
WIDE, NARROW = "w", "n"
NARROW_LEVELS = ("source", "medium", "campaign")


def model_codes(model: str) -> tuple[str, ...]:
    """The model column values a report under one model sums."""
    code = MODEL_CODES[model]
    return (EVERY_MODEL, code) if model == "first" else (EVERY_MODEL, EVERY_MODEL_BUT_FIRST, code)


class CreditRollup(RollupRow, db.Model):
    """Per-day report figures by attribution model, kept by PostgreSQL triggers on leads, deals and visits and by
    the attribution of a lead (portal.reports.credit_sql). Deltas and merged rows as in ReportRollup; SQLite
    leaves it empty and groups the base tables."""

    __tablename__ = "credit_rollups"
    __table_args__ = (
        Index("ix_credit_rollups_workspace_grain_day", "workspace_id", "grain", "day"),
        # The usual report reads only narrow rows: an index-only scan of this one, no heap pages (after VACUUM).
        Index("ix_credit_rollups_narrow", "workspace_id", "model", "day",
              postgresql_include=["sale_kind", *NARROW_LEVELS, *CREDIT_FIGURES],
              postgresql_where=text("grain = 'n'"), sqlite_where=text("grain = 'n'")),
        Index("uq_credit_rollups_merged_key", "workspace_id", "grain", "day", "model", "sale_kind", *ROLLUP_LEVELS,
              unique=True, postgresql_where=text("merged"), sqlite_where=text("merged")),
        Index("ix_credit_rollups_deltas", "workspace_id", postgresql_where=text("NOT merged"),
              sqlite_where=text("NOT merged")),
    )

    grain: Mapped[str] = mapped_column(String(1))
    model: Mapped[str] = mapped_column(String(1))
    visits: Mapped[int] = mapped_column(BigInteger, server_default="0")
