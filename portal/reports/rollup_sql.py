"""The PostgreSQL side of report rollups: functions that turn one lead, deal or spend row into its rollup rows,
the triggers that append them as signed deltas on every write, and the set-based rebuild.

Why triggers: every path that writes leads, deals or spend — the intake's one INSERT, the sync engine, webhooks,
spam marking, the CSV import, bulk COPY, raw SQL in a console — passes through them, in the writing transaction.
Rows are only ever appended (+ for the new state of a row, − for its old one), so concurrent writers never wait
for each other on a shared counter row; `portal.reports.rollups.compact` folds the deltas later.

The rules here are the report's rules (portal.reports.tags mirrors them in Python for SQLite and for
`flask reports check`): tags trimmed and lower-cased, "" for none; first touch takes the lead's first-touch tags
when any of its first source / medium / campaign is set; a deal from our form counts under its lead's tags on the
lead's creation day (cohort), others under their own tags or "(amocrm, no utm)" on their creation day; won and
lost deals count on their closing day, open deals on their creation day (closed basis); deleted deals, spam and
repeats are left out (spam leads' deals are not). Days are local days in the workspace's time zone.

Repeat sales: a deal's rows carry sale_kind "r" when its amoCRM contact has an earlier deal (by created_at, then
id; deleted deals do not count), else "n" (a deal without a contact is always new); lead and spend rows carry "".
Whether a deal is first depends on its contact's other deals, so the kind is kept on the deal row (deals.sale_kind)
and every row change emits its old rows under its old kind and its new rows under its new one. After a deal
changes, the deals trigger sets the kind of each deal of the contacts it touched again (an UPDATE of only the rows
whose kind is now wrong, which fires this trigger once more and moves their rows): an earlier deal that arrives late
turns the one that came first into a repeat in the same transaction, and a statement changing many deals is seen
whole (AFTER triggers run when the statement has ended). A repeat deal not from our form takes the tags and
cohort day of its contact's first deal's lead when that deal came from our form (deals.origin_lead_id, kept by the
same UPDATE): the customer's later purchases are credited to the channel that brought them. A per-workspace
advisory lock makes those writers take turns, so two transactions never both take a contact's first deal for
their own.

A change to these functions needs a migration that runs SQL_STATEMENTS again (CREATE OR REPLACE) and REBUILD_ALL.
"""

LEVELS = "source, medium, campaign, content, term, landing_path, referrer_domain"
FIGURES = ("leads, cohort_open, cohort_won, cohort_lost, cohort_revenue, closed_open, closed_won, closed_lost, "
           "closed_revenue, spend")
# The columns after workspace_id of one fact row f (day, attribution, tags[], figures[]), as delta rows.
FACT_VALUES = ("f.day, f.attribution, false, kind, f.tags[1], f.tags[2], f.tags[3], f.tags[4], f.tags[5], f.tags[6], "
               "f.tags[7], f.figures[1], f.figures[2], f.figures[3], f.figures[4], f.figures[5], f.figures[6], "
               "f.figures[7], f.figures[8], f.figures[9], f.figures[10]")
WHITESPACE = r"E' \t\r\n\f\x0B'"  # E'\v' is not an escape in PostgreSQL: it would trim "v"

SQL_STATEMENTS = [
    f"""
CREATE OR REPLACE FUNCTION leadpath_tag(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(lower(btrim(coalesce(value, ''), {WHITESPACE})), 200)
$$""",
    # The path of a landing page URL ("/" when it has none), lower-cased, without query or fragment.
    f"""
CREATE OR REPLACE FUNCTION leadpath_url_path(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN btrim(coalesce(value, ''), {WHITESPACE}) = '' THEN ''
        ELSE left(lower(coalesce(nullif(substring(btrim(value, {WHITESPACE})
                  FROM '^(?:[A-Za-z][A-Za-z0-9+.-]*:)?(?://[^/?#]*)?([^?#]*)'), ''), '/')), 200) END
$$""",
    # The host of a referrer URL, lower-cased, without "www."; "" when there is none or it is not a URL.
    f"""
CREATE OR REPLACE FUNCTION leadpath_url_domain(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(coalesce(regexp_replace(lower(substring(btrim(coalesce(value, ''), {WHITESPACE})
                FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^/?#:]+)')), '^www\\.', ''), ''), 200)
$$""",
    # A lead's tag sets: one row "b" when its first touch equals its last (or it has none), else "l" and "f".
    """
CREATE OR REPLACE FUNCTION leadpath_lead_touches(l leads)
RETURNS TABLE (attribution text, tags text[])
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH touch AS (
        SELECT ARRAY[leadpath_tag(l.utm_source), leadpath_tag(l.utm_medium), leadpath_tag(l.utm_campaign),
                     leadpath_tag(l.utm_content), leadpath_tag(l.utm_term), leadpath_url_path(l.landing_page),
                     leadpath_url_domain(l.referrer)] AS last_tags,
               CASE WHEN coalesce(l.first_utm_source, '') <> '' OR coalesce(l.first_utm_medium, '') <> ''
                         OR coalesce(l.first_utm_campaign, '') <> ''
                    THEN ARRAY[leadpath_tag(l.first_utm_source), leadpath_tag(l.first_utm_medium),
                               leadpath_tag(l.first_utm_campaign), leadpath_tag(l.first_utm_content),
                               leadpath_tag(l.first_utm_term), leadpath_url_path(l.first_landing_page),
                               leadpath_url_domain(l.first_referrer)] END AS first_tags)
    SELECT 'b', last_tags FROM touch WHERE first_tags IS NULL OR first_tags = last_tags
    UNION ALL SELECT 'l', last_tags FROM touch WHERE first_tags <> last_tags
    UNION ALL SELECT 'f', first_tags FROM touch WHERE first_tags <> last_tags
$$""",
    # A lead's rollup rows (none for spam, repeats and test leads).
    """
CREATE OR REPLACE FUNCTION leadpath_lead_facts(l leads, tz text, sign integer)
RETURNS TABLE (day date, attribution text, tags text[], figures bigint[])
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (l.created_at AT TIME ZONE tz)::date, t.attribution, t.tags,
           ARRAY[sign, 0, 0, 0, 0, 0, 0, 0, 0, 0]::bigint[]
    FROM leadpath_lead_touches(l) t
    WHERE NOT l.is_spam AND l.duplicate_of_id IS NULL AND NOT l.is_test
$$""",
    # A deal's rollup rows: cohort figures and closed-basis figures. l is its lead (a NULL row: not from our form).
    """
CREATE OR REPLACE FUNCTION leadpath_deal_facts(d deals, l leads, tz text, sign integer)
RETURNS TABLE (day date, attribution text, tags text[], figures bigint[])
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH deal AS (
        SELECT (d.state = 'won')::int AS won, (d.state = 'lost')::int AS lost,
               (d.state NOT IN ('won', 'lost'))::int AS open,
               CASE WHEN d.state = 'won' THEN (coalesce(d.amount, 0) * 100)::bigint ELSE 0 END AS cents,
               CASE WHEN l.id IS NOT NULL THEN (l.created_at AT TIME ZONE tz)::date
                    ELSE (d.created_at AT TIME ZONE tz)::date END AS cohort_day,
               CASE WHEN d.state IN ('won', 'lost') THEN (d.closed_at AT TIME ZONE tz)::date
                    ELSE (d.created_at AT TIME ZONE tz)::date END AS closed_day),
    touch AS (
        SELECT t.attribution, t.tags FROM leadpath_lead_touches(l) t WHERE l.id IS NOT NULL
        UNION ALL
        SELECT 'b', CASE WHEN leadpath_tag(d.utm_source) = '' AND leadpath_tag(d.utm_medium) = ''
                              AND leadpath_tag(d.utm_campaign) = ''
                         THEN ARRAY['(amocrm, no utm)', '', '', '', '', '', '']
                         ELSE ARRAY[leadpath_tag(d.utm_source), leadpath_tag(d.utm_medium),
                                    leadpath_tag(d.utm_campaign), leadpath_tag(d.utm_content),
                                    leadpath_tag(d.utm_term), '', ''] END
        WHERE l.id IS NULL)
    SELECT deal.cohort_day, touch.attribution, touch.tags,
           ARRAY[0, sign * deal.open, sign * deal.won, sign * deal.lost, sign * deal.cents, 0, 0, 0, 0, 0]::bigint[]
    FROM deal, touch WHERE NOT d.deleted AND l.is_test IS NOT TRUE
    UNION ALL
    SELECT deal.closed_day, touch.attribution, touch.tags,
           ARRAY[0, 0, 0, 0, 0, sign * deal.open, sign * deal.won, sign * deal.lost, sign * deal.cents, 0]::bigint[]
    FROM deal, touch WHERE NOT d.deleted AND l.is_test IS NOT TRUE AND deal.closed_day IS NOT NULL
$$""",
    """
CREATE OR REPLACE FUNCTION leadpath_spend_facts(s ad_spend, sign integer)
RETURNS TABLE (day date, attribution text, tags text[], figures bigint[])
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT s.date, 'b', ARRAY[leadpath_tag(s.utm_source), leadpath_tag(s.utm_medium), leadpath_tag(s.utm_campaign),
                             '', '', '', ''],
           ARRAY[0, 0, 0, 0, 0, 0, 0, 0, 0, sign * (s.amount * 100)::bigint]::bigint[]
$$""",
    # Whether a deal is a contact's first ("n") or a later one ("r"), as the deals table holds the others now.
    """
CREATE OR REPLACE FUNCTION leadpath_deal_kind(d deals) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN d.amocrm_contact_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM deals e WHERE e.workspace_id = d.workspace_id AND e.amocrm_contact_id = d.amocrm_contact_id
            AND NOT e.deleted AND e.id <> d.id AND (e.created_at, e.id) < (d.created_at, d.id))
        THEN 'r' ELSE 'n' END
$$""",
    # The lead whose tags a deal not from our form takes: its contact's first deal's lead, when that deal is a
    # later one of the contact's and the first came from our form (NULL otherwise).
    """
CREATE OR REPLACE FUNCTION leadpath_deal_origin(d deals) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN d.lead_id IS NULL AND d.amocrm_contact_id IS NOT NULL THEN (
        SELECT e.lead_id FROM deals e WHERE e.workspace_id = d.workspace_id
            AND e.amocrm_contact_id = d.amocrm_contact_id AND NOT e.deleted AND e.id <> d.id
            AND (e.created_at, e.id) < (d.created_at, d.id)
        ORDER BY e.created_at, e.id LIMIT 1) END
$$""",
    # Append facts as delta rows.
    f"""
CREATE OR REPLACE FUNCTION leadpath_rollup_append(workspace integer, day date, attribution text, tags text[],
                                                  figures bigint[], kind text)
RETURNS void LANGUAGE sql VOLATILE AS $$
    INSERT INTO report_rollups (workspace_id, day, attribution, merged, sale_kind, {LEVELS}, {FIGURES})
    VALUES (workspace, day, attribution, false, kind, tags[1], tags[2], tags[3], tags[4], tags[5], tags[6], tags[7],
            figures[1], figures[2], figures[3], figures[4], figures[5], figures[6], figures[7], figures[8],
            figures[9], figures[10])
$$""",
    # A deal's rollup rows with its lead as it is now. FOR SHARE: a concurrent change of the lead's tags waits
    # for this transaction (or this one for it), so deltas of the lead and of its deals never cross.
    f"""
CREATE OR REPLACE FUNCTION leadpath_rollup_deal(d deals, sign integer) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    tz text;
    lead leads;
    kind text := d.sale_kind;
BEGIN
    IF d.deleted THEN RETURN; END IF;
    SELECT timezone INTO tz FROM workspaces WHERE id = d.workspace_id;
    IF tz IS NULL THEN RETURN; END IF;  -- the workspace is being deleted: its rollups go with it
    IF coalesce(d.lead_id, d.origin_lead_id) IS NOT NULL THEN
        SELECT * INTO lead FROM leads WHERE id = coalesce(d.lead_id, d.origin_lead_id)
            AND workspace_id = d.workspace_id FOR SHARE;
    END IF;
    INSERT INTO report_rollups (workspace_id, day, attribution, merged, sale_kind, {LEVELS}, {FIGURES})
    SELECT d.workspace_id, {FACT_VALUES} FROM leadpath_deal_facts(d, lead, tz, sign) f;
END $$""",
    f"""
CREATE OR REPLACE FUNCTION leadpath_rollup_lead(l leads, sign integer) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    tz text;
    kind text := '';
BEGIN
    IF l.is_spam OR l.duplicate_of_id IS NOT NULL OR l.is_test THEN RETURN; END IF;
    SELECT timezone INTO tz FROM workspaces WHERE id = l.workspace_id;
    IF tz IS NULL THEN RETURN; END IF;
    INSERT INTO report_rollups (workspace_id, day, attribution, merged, sale_kind, {LEVELS}, {FIGURES})
    SELECT l.workspace_id, {FACT_VALUES} FROM leadpath_lead_facts(l, tz, sign) f;
END $$""",
    # Leads: the lead's own row, and its deals' rows, which follow the lead's tags and creation day.
    f"""
CREATE OR REPLACE FUNCTION leadpath_leads_rollup_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tz text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM leadpath_rollup_lead(OLD, -1);
        SELECT timezone INTO tz FROM workspaces WHERE id = OLD.workspace_id;
        IF tz IS NOT NULL THEN
            -- Its deals leave the old lead's tags; on DELETE they go to their own tags (the foreign key clears
            -- their lead_id next, and their trigger then finds no lead: a change from own tags to own tags).
            PERFORM leadpath_rollup_append(d.workspace_id, f.day, f.attribution, f.tags, f.figures, d.sale_kind)
            FROM deals d, leadpath_deal_facts(d, OLD, tz, -1) f
            WHERE coalesce(d.lead_id, d.origin_lead_id) = OLD.id AND d.workspace_id = OLD.workspace_id;
            PERFORM leadpath_rollup_append(d.workspace_id, f.day, f.attribution, f.tags, f.figures, d.sale_kind)
            FROM deals d, leadpath_deal_facts(d, CASE WHEN TG_OP = 'UPDATE' THEN NEW END, tz, 1) f
            WHERE coalesce(d.lead_id, d.origin_lead_id) = OLD.id AND d.workspace_id = OLD.workspace_id;
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        PERFORM leadpath_rollup_lead(NEW, 1);
    ELSIF TG_OP = 'INSERT' AND NOT NEW.is_spam AND NEW.duplicate_of_id IS NULL AND NOT NEW.is_test THEN
        -- The intake's hot path, written out rather than through leadpath_rollup_lead: a SQL function called
        -- from PL/pgSQL is planned again on every call, this statement's plan is kept for the session. Same rows.
        INSERT INTO report_rollups (workspace_id, day, attribution, merged, sale_kind, {LEVELS}, {FIGURES})
        SELECT NEW.workspace_id, (NEW.created_at AT TIME ZONE w.timezone)::date, t.attribution, false, '',
               t.tags[1], t.tags[2], t.tags[3], t.tags[4], t.tags[5], t.tags[6], t.tags[7], 1, 0, 0, 0, 0, 0, 0, 0,
               0, 0
        FROM workspaces w, leadpath_lead_touches(NEW) t WHERE w.id = NEW.workspace_id;
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$""",
    """
CREATE OR REPLACE FUNCTION leadpath_deals_rollup_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM leadpath_rollup_deal(OLD, -1); END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN PERFORM leadpath_rollup_deal(NEW, 1); END IF;
    IF OLD.amocrm_contact_id IS NOT NULL OR NEW.amocrm_contact_id IS NOT NULL OR NEW.sale_kind <> 'n'
       OR NEW.origin_lead_id IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(21, coalesce(NEW.workspace_id, OLD.workspace_id));
        UPDATE deals d SET sale_kind = leadpath_deal_kind(d), origin_lead_id = leadpath_deal_origin(d)
        WHERE d.workspace_id IN (OLD.workspace_id, NEW.workspace_id)
          AND (d.amocrm_contact_id IN (OLD.amocrm_contact_id, NEW.amocrm_contact_id) OR d.id = NEW.id)
          AND (d.sale_kind <> leadpath_deal_kind(d) OR d.origin_lead_id IS DISTINCT FROM leadpath_deal_origin(d));
    END IF;
    RETURN NULL;
END $$""",
    """
CREATE OR REPLACE FUNCTION leadpath_spend_rollup_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM leadpath_rollup_append(OLD.workspace_id, f.day, f.attribution, f.tags, f.figures, '')
        FROM leadpath_spend_facts(OLD, -1) f WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = OLD.workspace_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM leadpath_rollup_append(NEW.workspace_id, f.day, f.attribution, f.tags, f.figures, '')
        FROM leadpath_spend_facts(NEW, 1) f;
    END IF;
    RETURN NULL;
END $$""",
    # A workspace's rollups from its base tables, in one statement (the rebuild, and a time zone change).
    f"""
CREATE OR REPLACE FUNCTION leadpath_rebuild_rollups(workspace integer) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    tz text;
    written bigint;
BEGIN
    SELECT timezone INTO tz FROM workspaces WHERE id = workspace;
    UPDATE deals d SET sale_kind = leadpath_deal_kind(d), origin_lead_id = leadpath_deal_origin(d)
    WHERE d.workspace_id = workspace
      AND (d.sale_kind <> leadpath_deal_kind(d) OR d.origin_lead_id IS DISTINCT FROM leadpath_deal_origin(d));
    DELETE FROM report_rollups WHERE workspace_id = workspace;
    IF tz IS NULL THEN RETURN 0; END IF;
    INSERT INTO report_rollups (workspace_id, day, attribution, merged, sale_kind, {LEVELS}, {FIGURES})
    SELECT workspace, f.day, f.attribution, true, f.kind, f.tags[1], f.tags[2], f.tags[3], f.tags[4], f.tags[5],
           f.tags[6], f.tags[7], sum(f.figures[1]), sum(f.figures[2]), sum(f.figures[3]), sum(f.figures[4]),
           sum(f.figures[5]), sum(f.figures[6]), sum(f.figures[7]), sum(f.figures[8]), sum(f.figures[9]),
           sum(f.figures[10])
    FROM (SELECT x.*, '' AS kind FROM leads l, leadpath_lead_facts(l, tz, 1) x WHERE l.workspace_id = workspace
          UNION ALL
          SELECT x.*, d.sale_kind FROM deals d
                 LEFT JOIN leads l ON l.id = coalesce(d.lead_id, d.origin_lead_id) AND l.workspace_id = workspace,
                 leadpath_deal_facts(d, l, tz, 1) x WHERE d.workspace_id = workspace
          UNION ALL
          SELECT x.*, '' FROM ad_spend s, leadpath_spend_facts(s, 1) x WHERE s.workspace_id = workspace) f
    GROUP BY f.day, f.attribution, f.kind, f.tags[1], f.tags[2], f.tags[3], f.tags[4], f.tags[5], f.tags[6], f.tags[7];
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END $$""",
    """
CREATE OR REPLACE FUNCTION leadpath_workspace_timezone_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM leadpath_rebuild_rollups(NEW.id);
    RETURN NULL;
END $$""",
    "DROP TRIGGER IF EXISTS leads_rollup ON leads",
    "DROP TRIGGER IF EXISTS leads_rollup_delete ON leads",
    "DROP TRIGGER IF EXISTS deals_rollup ON deals",
    "DROP TRIGGER IF EXISTS ad_spend_rollup ON ad_spend",
    "DROP TRIGGER IF EXISTS workspaces_rollup_timezone ON workspaces",
    # The intake's INSERT and the push's status updates are the hot writes: an UPDATE fires only when a column the
    # report reads changed.
    """
CREATE TRIGGER leads_rollup AFTER INSERT OR UPDATE OF workspace_id, created_at, is_spam, duplicate_of_id, is_test,
    utm_source, utm_medium, utm_campaign, utm_content, utm_term, landing_page, referrer, first_utm_source,
    first_utm_medium, first_utm_campaign, first_utm_content, first_utm_term, first_landing_page, first_referrer
    ON leads FOR EACH ROW EXECUTE FUNCTION leadpath_leads_rollup_trigger()""",
    # BEFORE: the lead must still be there for its deals' rows to leave its tags.
    """
CREATE TRIGGER leads_rollup_delete BEFORE DELETE ON leads
    FOR EACH ROW EXECUTE FUNCTION leadpath_leads_rollup_trigger()""",
    """
CREATE TRIGGER deals_rollup AFTER INSERT OR DELETE OR UPDATE OF workspace_id, lead_id, state, amount, closed_at,
    created_at, deleted, amocrm_contact_id, sale_kind, origin_lead_id, utm_source, utm_medium, utm_campaign,
    utm_content, utm_term
    ON deals FOR EACH ROW EXECUTE FUNCTION leadpath_deals_rollup_trigger()""",
    """
CREATE TRIGGER ad_spend_rollup AFTER INSERT OR DELETE OR UPDATE OF workspace_id, date, utm_source, utm_medium,
    utm_campaign, amount ON ad_spend FOR EACH ROW EXECUTE FUNCTION leadpath_spend_rollup_trigger()""",
    """
CREATE TRIGGER workspaces_rollup_timezone AFTER UPDATE OF timezone ON workspaces
    FOR EACH ROW WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone)
    EXECUTE FUNCTION leadpath_workspace_timezone_trigger()""",
]

REBUILD_ALL = "SELECT leadpath_rebuild_rollups(id) FROM workspaces"

# Functions of earlier revisions whose signature has since changed (a migration drops them before SQL_STATEMENTS).
SUPERSEDED_STATEMENTS = [
    "DROP TRIGGER IF EXISTS deals_rollup ON deals",
    "DROP FUNCTION IF EXISTS leadpath_deals_rollup_trigger()",
    "DROP FUNCTION IF EXISTS leadpath_rollup_append(integer, date, text, text[], bigint[])",
]

DROP_STATEMENTS = [
    "DROP TRIGGER IF EXISTS leads_rollup ON leads",
    "DROP TRIGGER IF EXISTS leads_rollup_delete ON leads",
    "DROP TRIGGER IF EXISTS deals_rollup ON deals",
    "DROP TRIGGER IF EXISTS ad_spend_rollup ON ad_spend",
    "DROP TRIGGER IF EXISTS workspaces_rollup_timezone ON workspaces",
    "DROP FUNCTION IF EXISTS leadpath_workspace_timezone_trigger()",
    "DROP FUNCTION IF EXISTS leadpath_rebuild_rollups(integer)",
    "DROP FUNCTION IF EXISTS leadpath_spend_rollup_trigger()",
    "DROP FUNCTION IF EXISTS leadpath_deals_rollup_trigger()",
    "DROP FUNCTION IF EXISTS leadpath_leads_rollup_trigger()",
    "DROP FUNCTION IF EXISTS leadpath_rollup_lead(leads, integer)",
    "DROP FUNCTION IF EXISTS leadpath_rollup_deal(deals, integer)",
    "DROP FUNCTION IF EXISTS leadpath_rollup_append(integer, date, text, text[], bigint[], text)",
    "DROP FUNCTION IF EXISTS leadpath_deal_origin(deals)",
    "DROP FUNCTION IF EXISTS leadpath_deal_kind(deals)",
    "DROP FUNCTION IF EXISTS leadpath_spend_facts(ad_spend, integer)",
    "DROP FUNCTION IF EXISTS leadpath_deal_facts(deals, leads, text, integer)",
    "DROP FUNCTION IF EXISTS leadpath_lead_facts(leads, text, integer)",
    "DROP FUNCTION IF EXISTS leadpath_lead_touches(leads)",
    "DROP FUNCTION IF EXISTS leadpath_url_domain(text)",
    "DROP FUNCTION IF EXISTS leadpath_url_path(text)",
    "DROP FUNCTION IF EXISTS leadpath_tag(text)",
]

# Fold a workspace's delta rows into its merged rows; rows that sum to nothing are dropped.
COMPACT = f"""
WITH moved AS (
    DELETE FROM report_rollups WHERE workspace_id = :workspace AND NOT merged
    RETURNING day, attribution, sale_kind, {LEVELS}, {FIGURES}),
folded AS (
    SELECT day, attribution, sale_kind, {LEVELS}, sum(leads) AS leads, sum(cohort_open) AS cohort_open,
           sum(cohort_won) AS cohort_won, sum(cohort_lost) AS cohort_lost, sum(cohort_revenue) AS cohort_revenue,
           sum(closed_open) AS closed_open, sum(closed_won) AS closed_won, sum(closed_lost) AS closed_lost,
           sum(closed_revenue) AS closed_revenue, sum(spend) AS spend
    FROM moved GROUP BY day, attribution, sale_kind, {LEVELS})
INSERT INTO report_rollups AS r (workspace_id, day, attribution, merged, sale_kind, {LEVELS}, {FIGURES})
SELECT :workspace, day, attribution, true, sale_kind, {LEVELS}, {FIGURES} FROM folded
ON CONFLICT (workspace_id, day, attribution, sale_kind, {LEVELS}) WHERE merged DO UPDATE SET
    leads = r.leads + excluded.leads, cohort_open = r.cohort_open + excluded.cohort_open,
    cohort_won = r.cohort_won + excluded.cohort_won, cohort_lost = r.cohort_lost + excluded.cohort_lost,
    cohort_revenue = r.cohort_revenue + excluded.cohort_revenue,
    closed_open = r.closed_open + excluded.closed_open, closed_won = r.closed_won + excluded.closed_won,
    closed_lost = r.closed_lost + excluded.closed_lost, closed_revenue = r.closed_revenue + excluded.closed_revenue,
    spend = r.spend + excluded.spend
"""
DROP_EMPTY = """
DELETE FROM report_rollups WHERE workspace_id = :workspace AND merged
    AND leads = 0 AND cohort_open = 0 AND cohort_won = 0 AND cohort_lost = 0 AND cohort_revenue = 0
    AND closed_open = 0 AND closed_won = 0 AND closed_lost = 0 AND closed_revenue = 0 AND spend = 0
"""
