"""The PostgreSQL side of credit rollups: report figures split by attribution model (portal.models.report_rollup
CreditRollup), kept like report_rollups by triggers that append signed delta rows in the writing transaction.

A lead's credit rows: when it has lead_credits rows (it was attributed), each touch's tags with each model's weight
— one row with model "*" when every model gives the touch the same weight (a one-visit chain: most leads), else one
row per model whose weight is not zero. A lead not attributed yet counts whole under its own touches, as the
first/last report counts it: its last touch in every model but first ("R", or "*" when its first touch equals its
last) and its first-touch tags under first ("F"). Totals are therefore exact at every moment: every model gives
each lead exactly 1,000,000 millionths.

Figures: visits (whole), leads and deal counts in millionths, revenue in cents × millionths. A deal from our form
is split by its lead's (or origin lead's) credit rows; a deal not from our form counts whole under its own tags in
every model. Visits count under their own tags in every model ("*") on their local start day. Days, spam,
repeats, test leads, deleted deals, sale kinds and the date bases follow portal.reports.rollup_sql exactly (it
keeps deals.sale_kind and deals.origin_lead_id; these triggers only read them).

lead_credits has no trigger: portal.reports.credits.attribute_lead moves a lead's rows itself (−1 under the old
credits, replace them, +1 under the new ones) with the lead row locked, through leadpath_credit_rollup_lead_and_deals.

A change to these functions needs a migration that runs SQL_STATEMENTS again (CREATE OR REPLACE) and REBUILD_ALL.
"""
from portal.reports.rollup_sql import LEVELS

FIGURES = ("visits, leads, cohort_open, cohort_won, cohort_lost, cohort_revenue, closed_open, closed_won, closed_lost, "
           "closed_revenue")
# Grains: "w" keeps every level, "n" only source, medium and campaign (the report's usual levels sum far fewer rows
# that way). Writes append wide deltas only; folding (and the rebuild) writes merged rows of both grains, so a
# narrow read sums the merged narrow rows and the wide deltas.
NARROW = "CASE WHEN g.grain = 'n' THEN '' ELSE {} END"
# The columns after workspace_id of one fact row f, as a wide delta row.
FACT_VALUES = ("'w', f.day, f.model, false, kind, f.tags[1], f.tags[2], f.tags[3], f.tags[4], f.tags[5], f.tags[6], "
               "f.tags[7], f.figures[1], f.figures[2], f.figures[3], f.figures[4], f.figures[5], f.figures[6], "
               "f.figures[7], f.figures[8], f.figures[9], f.figures[10]")
GRAINS = "(VALUES ('w'), ('n')) g(grain)"
LEAD_TRIGGER_COLUMNS = ("workspace_id, created_at, is_spam, duplicate_of_id, is_test, utm_source, utm_medium, "
                        "utm_campaign, utm_content, utm_term, landing_page, referrer, first_utm_source, "
                        "first_utm_medium, first_utm_campaign, first_utm_content, first_utm_term, "
                        "first_landing_page, first_referrer")

SQL_STATEMENTS = [
    # A lead's credit rows (model code, tags, weight in millionths); see the module docstring.
    """
CREATE OR REPLACE FUNCTION leadpath_lead_credit_rows(l leads)
RETURNS TABLE (model text, tags text[], weight bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT m.model, ARRAY[c.source, c.medium, c.campaign, c.content, c.term, c.landing_path, c.referrer_domain],
           m.weight
    FROM lead_credits c
    CROSS JOIN LATERAL (
        SELECT v.model, v.weight::bigint AS weight
        FROM (VALUES ('*', c.weight_first, true), ('F', c.weight_first, false), ('L', c.weight_last, false),
                     ('N', c.weight_last_non_direct, false), ('A', c.weight_linear, false),
                     ('U', c.weight_u_shaped, false), ('T', c.weight_time_decay, false)) v(model, weight, every)
        WHERE v.every = (c.weight_first = c.weight_last AND c.weight_first = c.weight_last_non_direct
                         AND c.weight_first = c.weight_linear AND c.weight_first = c.weight_u_shaped
                         AND c.weight_first = c.weight_time_decay)) m
    WHERE c.lead_id = l.id AND c.workspace_id = l.workspace_id AND m.weight <> 0
    UNION ALL
    SELECT CASE t.attribution WHEN 'b' THEN '*' WHEN 'l' THEN 'R' ELSE 'F' END, t.tags, 1000000::bigint
    FROM leadpath_lead_touches(l) t
    WHERE NOT EXISTS (SELECT 1 FROM lead_credits c WHERE c.lead_id = l.id)
$$""",
    """
CREATE OR REPLACE FUNCTION leadpath_credit_lead_facts(l leads, tz text, sign integer)
RETURNS TABLE (day date, model text, tags text[], figures bigint[])
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (l.created_at AT TIME ZONE tz)::date, c.model, c.tags,
           ARRAY[0, sign * c.weight, 0, 0, 0, 0, 0, 0, 0, 0]::bigint[]
    FROM leadpath_lead_credit_rows(l) c
    WHERE NOT l.is_spam AND l.duplicate_of_id IS NULL AND NOT l.is_test
$$""",
    # A deal's rows under its lead's credit (l is a NULL row for a deal not from our form).
    """
CREATE OR REPLACE FUNCTION leadpath_credit_deal_facts(d deals, l leads, tz text, sign integer)
RETURNS TABLE (day date, model text, tags text[], figures bigint[])
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
        SELECT c.model, c.tags, c.weight FROM leadpath_lead_credit_rows(l) c WHERE l.id IS NOT NULL
        UNION ALL
        SELECT '*', CASE WHEN leadpath_tag(d.utm_source) = '' AND leadpath_tag(d.utm_medium) = ''
                              AND leadpath_tag(d.utm_campaign) = ''
                         THEN ARRAY['(amocrm, no utm)', '', '', '', '', '', '']
                         ELSE ARRAY[leadpath_tag(d.utm_source), leadpath_tag(d.utm_medium),
                                    leadpath_tag(d.utm_campaign), leadpath_tag(d.utm_content),
                                    leadpath_tag(d.utm_term), '', ''] END, 1000000::bigint
        WHERE l.id IS NULL)
    SELECT deal.cohort_day, touch.model, touch.tags,
           ARRAY[0, 0, sign * deal.open * touch.weight, sign * deal.won * touch.weight,
                 sign * deal.lost * touch.weight, sign * deal.cents * touch.weight, 0, 0, 0, 0]::bigint[]
    FROM deal, touch WHERE NOT d.deleted AND l.is_test IS NOT TRUE
    UNION ALL
    SELECT deal.closed_day, touch.model, touch.tags,
           ARRAY[0, 0, 0, 0, 0, 0, sign * deal.open * touch.weight, sign * deal.won * touch.weight,
                 sign * deal.lost * touch.weight, sign * deal.cents * touch.weight]::bigint[]
    FROM deal, touch WHERE NOT d.deleted AND l.is_test IS NOT TRUE AND deal.closed_day IS NOT NULL
$$""",
    """
CREATE OR REPLACE FUNCTION leadpath_visit_facts(v visits, tz text, sign integer)
RETURNS TABLE (day date, model text, tags text[], figures bigint[])
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (v.started_at AT TIME ZONE tz)::date, '*',
           ARRAY[leadpath_tag(v.utm_source), leadpath_tag(v.utm_medium), leadpath_tag(v.utm_campaign),
                 leadpath_tag(v.utm_content), leadpath_tag(v.utm_term), leadpath_url_path(v.landing_page),
                 leadpath_url_domain(v.referrer)],
           ARRAY[sign, 0, 0, 0, 0, 0, 0, 0, 0, 0]::bigint[]
$$""",
    f"""
CREATE OR REPLACE FUNCTION leadpath_credit_append(workspace integer, day date, model text, tags text[],
                                                  figures bigint[], kind text)
RETURNS void LANGUAGE sql VOLATILE AS $$
    INSERT INTO credit_rollups (workspace_id, grain, day, model, merged, sale_kind, {LEVELS}, {FIGURES})
    VALUES (workspace, 'w', day, model, false, kind, tags[1], tags[2], tags[3], tags[4], tags[5], tags[6], tags[7],
            figures[1], figures[2], figures[3], figures[4], figures[5], figures[6], figures[7], figures[8],
            figures[9], figures[10])
$$""",
    # FOR SHARE on the lead: a concurrent attribution (which locks the lead FOR UPDATE) or tag change and this
    # deal's rows never cross.
    f"""
CREATE OR REPLACE FUNCTION leadpath_credit_rollup_deal(d deals, sign integer) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    tz text;
    lead leads;
    kind text := d.sale_kind;
BEGIN
    IF d.deleted THEN RETURN; END IF;
    SELECT timezone INTO tz FROM workspaces WHERE id = d.workspace_id;
    IF tz IS NULL THEN RETURN; END IF;
    IF coalesce(d.lead_id, d.origin_lead_id) IS NOT NULL THEN
        SELECT * INTO lead FROM leads WHERE id = coalesce(d.lead_id, d.origin_lead_id)
            AND workspace_id = d.workspace_id FOR SHARE;
    END IF;
    INSERT INTO credit_rollups (workspace_id, grain, day, model, merged, sale_kind, {LEVELS}, {FIGURES})
    SELECT d.workspace_id, {FACT_VALUES} FROM leadpath_credit_deal_facts(d, lead, tz, sign) f;
END $$""",
    f"""
CREATE OR REPLACE FUNCTION leadpath_credit_rollup_lead(l leads, sign integer) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    tz text;
    kind text := '';
BEGIN
    IF l.is_spam OR l.duplicate_of_id IS NOT NULL OR l.is_test THEN RETURN; END IF;
    SELECT timezone INTO tz FROM workspaces WHERE id = l.workspace_id;
    IF tz IS NULL THEN RETURN; END IF;
    INSERT INTO credit_rollups (workspace_id, grain, day, model, merged, sale_kind, {LEVELS}, {FIGURES})
    SELECT l.workspace_id, {FACT_VALUES} FROM leadpath_credit_lead_facts(l, tz, sign) f;
END $$""",
    # The attribution's half of a credit change: a lead's own rows and its deals' rows under its credits as they
    # are now (sign −1 before replacing them, +1 after). Locks the lead row until the transaction ends.
    """
CREATE OR REPLACE FUNCTION leadpath_credit_rollup_lead_and_deals(workspace integer, lead_id integer,
                                                                 sign integer) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    tz text;
    l leads;
BEGIN
    SELECT * INTO l FROM leads WHERE id = lead_id AND workspace_id = workspace FOR UPDATE;
    IF NOT FOUND THEN RETURN; END IF;
    SELECT timezone INTO tz FROM workspaces WHERE id = workspace;
    IF tz IS NULL THEN RETURN; END IF;
    PERFORM leadpath_credit_rollup_lead(l, sign);
    PERFORM leadpath_credit_append(d.workspace_id, f.day, f.model, f.tags, f.figures, d.sale_kind)
    FROM deals d, leadpath_credit_deal_facts(d, l, tz, sign) f
    WHERE coalesce(d.lead_id, d.origin_lead_id) = l.id AND d.workspace_id = workspace;
END $$""",
    f"""
CREATE OR REPLACE FUNCTION leadpath_leads_credit_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tz text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM leadpath_credit_rollup_lead(OLD, -1);
        SELECT timezone INTO tz FROM workspaces WHERE id = OLD.workspace_id;
        IF tz IS NOT NULL THEN
            PERFORM leadpath_credit_append(d.workspace_id, f.day, f.model, f.tags, f.figures, d.sale_kind)
            FROM deals d, leadpath_credit_deal_facts(d, OLD, tz, -1) f
            WHERE coalesce(d.lead_id, d.origin_lead_id) = OLD.id AND d.workspace_id = OLD.workspace_id;
            PERFORM leadpath_credit_append(d.workspace_id, f.day, f.model, f.tags, f.figures, d.sale_kind)
            FROM deals d, leadpath_credit_deal_facts(d, CASE WHEN TG_OP = 'UPDATE' THEN NEW END, tz, 1) f
            WHERE coalesce(d.lead_id, d.origin_lead_id) = OLD.id AND d.workspace_id = OLD.workspace_id;
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        PERFORM leadpath_credit_rollup_lead(NEW, 1);
    ELSIF TG_OP = 'INSERT' AND NOT NEW.is_spam AND NEW.duplicate_of_id IS NULL AND NOT NEW.is_test THEN
        -- The intake's hot path, written out: a new lead has no credits yet, so its rows are its own touches
        -- (leadpath_lead_credit_rows' second half), and a SQL function called from PL/pgSQL is planned again on
        -- every call while this statement's plan is kept for the session. Same rows as leadpath_credit_rollup_lead.
        INSERT INTO credit_rollups (workspace_id, grain, day, model, merged, sale_kind, {LEVELS}, {FIGURES})
        SELECT NEW.workspace_id, 'w', (NEW.created_at AT TIME ZONE w.timezone)::date,
               CASE t.attribution WHEN 'b' THEN '*' WHEN 'l' THEN 'R' ELSE 'F' END, false, '',
               t.tags[1], t.tags[2], t.tags[3], t.tags[4], t.tags[5], t.tags[6], t.tags[7],
               0, 1000000, 0, 0, 0, 0, 0, 0, 0, 0
        FROM workspaces w, leadpath_lead_touches(NEW) t WHERE w.id = NEW.workspace_id;
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$""",
    """
CREATE OR REPLACE FUNCTION leadpath_deals_credit_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM leadpath_credit_rollup_deal(OLD, -1); END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN PERFORM leadpath_credit_rollup_deal(NEW, 1); END IF;
    RETURN NULL;
END $$""",
    f"""
CREATE OR REPLACE FUNCTION leadpath_visits_credit_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    tz text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT timezone INTO tz FROM workspaces WHERE id = OLD.workspace_id;
        IF tz IS NOT NULL THEN
            PERFORM leadpath_credit_append(OLD.workspace_id, f.day, f.model, f.tags, f.figures, '')
            FROM leadpath_visit_facts(OLD, tz, -1) f;
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        -- The beacon's hot path: one INSERT written out (leadpath_visit_facts' row), planned once per session
        -- rather than two SQL functions planned again on every call.
        INSERT INTO credit_rollups (workspace_id, grain, day, model, merged, sale_kind, {LEVELS}, {FIGURES})
        SELECT NEW.workspace_id, 'w', (NEW.started_at AT TIME ZONE w.timezone)::date, '*', false, '',
               leadpath_tag(NEW.utm_source), leadpath_tag(NEW.utm_medium), leadpath_tag(NEW.utm_campaign),
               leadpath_tag(NEW.utm_content), leadpath_tag(NEW.utm_term), leadpath_url_path(NEW.landing_page),
               leadpath_url_domain(NEW.referrer), 1, 0, 0, 0, 0, 0, 0, 0, 0, 0
        FROM workspaces w WHERE w.id = NEW.workspace_id;
    END IF;
    RETURN NULL;
END $$""",
    f"""
CREATE OR REPLACE FUNCTION leadpath_rebuild_credit_rollups(workspace integer) RETURNS bigint
LANGUAGE plpgsql VOLATILE
-- Hundreds of thousands of groups (two grains, visits by landing page and referrer): grouped in memory, not in
-- sorted runs on disk, which took minutes per million visits with the default 4 MB.
SET work_mem = '128MB' AS $$
DECLARE
    tz text;
    written bigint;
BEGIN
    SELECT timezone INTO tz FROM workspaces WHERE id = workspace;
    DELETE FROM credit_rollups WHERE workspace_id = workspace;
    IF tz IS NULL THEN RETURN 0; END IF;
    -- Visits are many: grouped by their raw columns first, so the tag functions run once per distinct group.
    INSERT INTO credit_rollups (workspace_id, grain, day, model, merged, sale_kind, {LEVELS}, {FIGURES})
    SELECT workspace, g.grain, f.day, f.model, true, f.kind, f.tags[1], f.tags[2], f.tags[3],
           {", ".join(NARROW.format(f"f.tags[{index}]") for index in (4, 5, 6, 7))},
           sum(f.figures[1]), sum(f.figures[2]), sum(f.figures[3]), sum(f.figures[4]),
           sum(f.figures[5]), sum(f.figures[6]), sum(f.figures[7]), sum(f.figures[8]), sum(f.figures[9]),
           sum(f.figures[10])
    FROM (SELECT x.*, '' AS kind FROM leads l, leadpath_credit_lead_facts(l, tz, 1) x
          WHERE l.workspace_id = workspace
          UNION ALL
          SELECT x.*, d.sale_kind FROM deals d
                 LEFT JOIN leads l ON l.id = coalesce(d.lead_id, d.origin_lead_id) AND l.workspace_id = workspace,
                 leadpath_credit_deal_facts(d, l, tz, 1) x WHERE d.workspace_id = workspace
          UNION ALL
          SELECT v.day, '*', ARRAY[leadpath_tag(v.utm_source), leadpath_tag(v.utm_medium),
                                   leadpath_tag(v.utm_campaign), leadpath_tag(v.utm_content),
                                   leadpath_tag(v.utm_term), leadpath_url_path(v.landing_page),
                                   leadpath_url_domain(v.referrer)],
                 ARRAY[v.visits, 0, 0, 0, 0, 0, 0, 0, 0, 0]::bigint[], ''
          FROM (SELECT (started_at AT TIME ZONE tz)::date AS day, utm_source, utm_medium, utm_campaign,
                       utm_content, utm_term, landing_page, referrer, count(*) AS visits
                FROM visits WHERE workspace_id = workspace
                GROUP BY 1, 2, 3, 4, 5, 6, 7, 8) v) f,
         {GRAINS}
    GROUP BY g.grain, f.day, f.model, f.kind, f.tags[1], f.tags[2], f.tags[3],
             {", ".join(NARROW.format(f"f.tags[{index}]") for index in (4, 5, 6, 7))};
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END $$""",
    """
CREATE OR REPLACE FUNCTION leadpath_workspace_credit_timezone_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM leadpath_rebuild_credit_rollups(NEW.id);
    RETURN NULL;
END $$""",
    "DROP TRIGGER IF EXISTS leads_credit_rollup ON leads",
    "DROP TRIGGER IF EXISTS leads_credit_rollup_delete ON leads",
    "DROP TRIGGER IF EXISTS deals_credit_rollup ON deals",
    "DROP TRIGGER IF EXISTS visits_credit_rollup ON visits",
    "DROP TRIGGER IF EXISTS workspaces_credit_timezone ON workspaces",
    f"""
CREATE TRIGGER leads_credit_rollup AFTER INSERT OR UPDATE OF {LEAD_TRIGGER_COLUMNS}
    ON leads FOR EACH ROW EXECUTE FUNCTION leadpath_leads_credit_trigger()""",
    """
CREATE TRIGGER leads_credit_rollup_delete BEFORE DELETE ON leads
    FOR EACH ROW EXECUTE FUNCTION leadpath_leads_credit_trigger()""",
    """
CREATE TRIGGER deals_credit_rollup AFTER INSERT OR DELETE OR UPDATE OF workspace_id, lead_id, state, amount,
    closed_at, created_at, deleted, amocrm_contact_id, sale_kind, origin_lead_id, utm_source, utm_medium,
    utm_campaign, utm_content, utm_term
    ON deals FOR EACH ROW EXECUTE FUNCTION leadpath_deals_credit_trigger()""",
    """
CREATE TRIGGER visits_credit_rollup AFTER INSERT OR DELETE OR UPDATE OF workspace_id, started_at, utm_source,
    utm_medium, utm_campaign, utm_content, utm_term, landing_page, referrer
    ON visits FOR EACH ROW EXECUTE FUNCTION leadpath_visits_credit_trigger()""",
    """
CREATE TRIGGER workspaces_credit_timezone AFTER UPDATE OF timezone ON workspaces
    FOR EACH ROW WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone)
    EXECUTE FUNCTION leadpath_workspace_credit_timezone_trigger()""",
]

REBUILD_ALL = "SELECT leadpath_rebuild_credit_rollups(id) FROM workspaces"

DROP_STATEMENTS = [
    "DROP TRIGGER IF EXISTS leads_credit_rollup ON leads",
    "DROP TRIGGER IF EXISTS leads_credit_rollup_delete ON leads",
    "DROP TRIGGER IF EXISTS deals_credit_rollup ON deals",
    "DROP TRIGGER IF EXISTS visits_credit_rollup ON visits",
    "DROP TRIGGER IF EXISTS workspaces_credit_timezone ON workspaces",
    "DROP FUNCTION IF EXISTS leadpath_workspace_credit_timezone_trigger()",
    "DROP FUNCTION IF EXISTS leadpath_rebuild_credit_rollups(integer)",
    "DROP FUNCTION IF EXISTS leadpath_visits_credit_trigger()",
    "DROP FUNCTION IF EXISTS leadpath_deals_credit_trigger()",
    "DROP FUNCTION IF EXISTS leadpath_leads_credit_trigger()",
    "DROP FUNCTION IF EXISTS leadpath_credit_rollup_lead_and_deals(integer, integer, integer)",
    "DROP FUNCTION IF EXISTS leadpath_credit_rollup_lead(leads, integer)",
    "DROP FUNCTION IF EXISTS leadpath_credit_rollup_deal(deals, integer)",
    "DROP FUNCTION IF EXISTS leadpath_credit_append(integer, date, text, text[], bigint[], text)",
    "DROP FUNCTION IF EXISTS leadpath_visit_facts(visits, text, integer)",
    "DROP FUNCTION IF EXISTS leadpath_credit_deal_facts(deals, leads, text, integer)",
    "DROP FUNCTION IF EXISTS leadpath_credit_lead_facts(leads, text, integer)",
    "DROP FUNCTION IF EXISTS leadpath_lead_credit_rows(leads)",
]

SUMS = ("sum(visits) AS visits, sum(leads) AS leads, sum(cohort_open) AS cohort_open, sum(cohort_won) AS cohort_won, "
        "sum(cohort_lost) AS cohort_lost, sum(cohort_revenue) AS cohort_revenue, sum(closed_open) AS closed_open, "
        "sum(closed_won) AS closed_won, sum(closed_lost) AS closed_lost, sum(closed_revenue) AS closed_revenue")
ADD_UP = """visits = r.visits + excluded.visits, leads = r.leads + excluded.leads,
    cohort_open = r.cohort_open + excluded.cohort_open, cohort_won = r.cohort_won + excluded.cohort_won,
    cohort_lost = r.cohort_lost + excluded.cohort_lost, cohort_revenue = r.cohort_revenue + excluded.cohort_revenue,
    closed_open = r.closed_open + excluded.closed_open, closed_won = r.closed_won + excluded.closed_won,
    closed_lost = r.closed_lost + excluded.closed_lost, closed_revenue = r.closed_revenue + excluded.closed_revenue"""
# Fold a workspace's (wide) delta rows into its merged rows of both grains.
COMPACT = f"""
WITH moved AS (
    DELETE FROM credit_rollups WHERE workspace_id = :workspace AND NOT merged
    RETURNING day, model, sale_kind, {LEVELS}, {FIGURES}),
wide AS (
    INSERT INTO credit_rollups AS r (workspace_id, grain, day, model, merged, sale_kind, {LEVELS}, {FIGURES})
    SELECT :workspace, 'w', day, model, true, sale_kind, {LEVELS}, {FIGURES}
    FROM (SELECT day, model, sale_kind, {LEVELS}, {SUMS} FROM moved GROUP BY day, model, sale_kind, {LEVELS}) f
    ON CONFLICT (workspace_id, grain, day, model, sale_kind, {LEVELS}) WHERE merged DO UPDATE SET {ADD_UP})
INSERT INTO credit_rollups AS r (workspace_id, grain, day, model, merged, sale_kind, {LEVELS}, {FIGURES})
SELECT :workspace, 'n', day, model, true, sale_kind, source, medium, campaign, '', '', '', '', {FIGURES}
FROM (SELECT day, model, sale_kind, source, medium, campaign, {SUMS} FROM moved
      GROUP BY day, model, sale_kind, source, medium, campaign) f
ON CONFLICT (workspace_id, grain, day, model, sale_kind, {LEVELS}) WHERE merged DO UPDATE SET {ADD_UP}
"""
DROP_EMPTY = """
DELETE FROM credit_rollups WHERE workspace_id = :workspace AND merged
    AND visits = 0 AND leads = 0 AND cohort_open = 0 AND cohort_won = 0 AND cohort_lost = 0 AND cohort_revenue = 0
    AND closed_open = 0 AND closed_won = 0 AND closed_lost = 0 AND closed_revenue = 0
"""
