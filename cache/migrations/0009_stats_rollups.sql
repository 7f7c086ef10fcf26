-- Roll-ups within one retailer and within one region, so a view filtered to either (a retailer
-- seeing its own figures, a brand looking at one place) reads thousands of roll-up rows instead of
-- a hundred thousand daily rows scattered over stats_daily.
--
-- Laid out like stats_rollup (0005), inside a scope: 'r' the rows of retailer scope_value,
-- 'g' the rows of region scope_value. A scope's own dimension is not kept (its one row is the
-- scope's total: dim 'a'). Kept by the aggregator in the same transaction as stats_daily.
CREATE TABLE stats_rollup_within (
    scope        "char" NOT NULL,
    scope_value  text NOT NULL,
    LIKE stats_rollup INCLUDING DEFAULTS,
    -- A view reads one scope's grain and dimension over a period.
    PRIMARY KEY (scope, scope_value, grain, dim, period, campaign, value, currency)
);

-- Filters the roll-ups do not cover fall back to the daily rows: a retailer looking at one region
-- (the likeliest pair) reads that pair's rows only, not all of the retailer's or the region's.
CREATE INDEX stats_daily_retailer_region ON stats_daily (retailer_id, region, day) WHERE retailer_id <> '';

-- stats_rebuild_rollups() now rebuilds both tables: the 0005 one keeps its body under another name.
ALTER FUNCTION stats_rebuild_rollups() RENAME TO stats_rebuild_rollups_unscoped;
CREATE FUNCTION stats_rebuild_rollups() RETURNS void LANGUAGE sql AS $$
    SELECT stats_rebuild_rollups_unscoped();
    TRUNCATE stats_rollup_within;
    -- One scan of stats_daily: each row counts within its retailer and within its region.
    INSERT INTO stats_rollup_within (scope, scope_value, grain, dim, campaign, period, value, currency, loads, opens,
                                     searches, searches_with_offers, offers_shown, clicks, intent_cents)
    SELECT scope, scope_value, 'd'::"char",
           (CASE WHEN GROUPING(gtin) = 0 THEN 'p' WHEN GROUPING(retailer_id) = 0 THEN 'r'
                 WHEN GROUPING(mode) = 0 THEN 'o' WHEN GROUPING(region) = 0 THEN 'g' ELSE 'a' END)::"char",
           campaign, day, coalesce(gtin::text, retailer_id, mode, region, ''), currency,
           sum(loads), sum(opens), sum(searches), sum(searches_with_offers), sum(offers_shown), sum(clicks),
           sum(intent_cents)
    FROM stats_daily, LATERAL (VALUES ('r'::"char", retailer_id), ('g'::"char", region)) AS s (scope, scope_value)
    WHERE scope_value <> ''
    GROUP BY GROUPING SETS ((scope, scope_value, campaign, day, currency),
                            (scope, scope_value, campaign, day, gtin, currency),
                            (scope, scope_value, campaign, day, retailer_id, currency),
                            (scope, scope_value, campaign, day, mode, currency),
                            (scope, scope_value, campaign, day, region, currency))
    -- Not a scope's own dimension (its total is 'a'); by retailer and by mode only rows that have one.
    HAVING NOT (GROUPING(retailer_id) = 0 AND (scope = 'r' OR retailer_id = ''))
       AND NOT (GROUPING(region) = 0 AND scope = 'g') AND NOT (GROUPING(mode) = 0 AND mode = '')
    ORDER BY 1, 2, 4, 6, 5;
    INSERT INTO stats_rollup_within (scope, scope_value, grain, dim, campaign, period, value, currency, loads, opens,
                                     searches, searches_with_offers, offers_shown, clicks, intent_cents)
    SELECT scope, scope_value, 'm', dim, campaign, date_trunc('month', period)::date, value, currency, sum(loads),
           sum(opens), sum(searches), sum(searches_with_offers), sum(offers_shown), sum(clicks), sum(intent_cents)
    FROM stats_rollup_within WHERE grain = 'd'
    GROUP BY scope, scope_value, dim, campaign, date_trunc('month', period)::date, value, currency
    ORDER BY 1, 2, 4, 6;
$$;

-- Figures counted so far get theirs.
SELECT stats_rebuild_rollups();
