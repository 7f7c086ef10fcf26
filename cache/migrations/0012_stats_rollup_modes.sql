-- Roll-ups within one mode ('o') and one mode of one retailer ('R', scope_value 'delivery:r7'), beside
-- those within a retailer ('r') and a region ('g') of 0009. Without them a view filtered to a mode read
-- every daily row of that mode: 3.5 s over the benchmark's 13 months (8.5 million daily rows), 550-790
-- ms for one retailer's mode. A paired scope's dimensions are its total ('a'), like a single scope's.
-- Kept by the aggregator. One mode of one region reads the daily rows through an index instead
-- (115 ms in the benchmark): roll-ups within region x mode would have been 12.5 million rows there.
CREATE INDEX stats_daily_mode_region ON stats_daily (mode, region, day) WHERE mode <> '';

-- The rows of one scan of stats_daily within the scopes asked for (the rebuild, and this migration's fill).
CREATE FUNCTION stats_rollup_within_days(scopes "char"[]) RETURNS TABLE (
    scope "char", scope_value text, grain "char", dim "char", campaign text, period date, value text, currency text,
    loads bigint, opens bigint, searches bigint, searches_with_offers bigint, offers_shown bigint, clicks bigint,
    intent_cents bigint
) LANGUAGE sql STABLE AS $$
    SELECT scope, scope_value, 'd'::"char",
           (CASE WHEN GROUPING(gtin) = 0 THEN 'p' WHEN GROUPING(retailer_id) = 0 THEN 'r'
                 WHEN GROUPING(mode) = 0 THEN 'o' WHEN GROUPING(region) = 0 THEN 'g' ELSE 'a' END)::"char",
           campaign, day, coalesce(gtin::text, retailer_id, mode, region, ''), currency,
           sum(loads), sum(opens), sum(searches), sum(searches_with_offers), sum(offers_shown), sum(clicks),
           sum(intent_cents)
    FROM stats_daily,
         LATERAL (VALUES ('r'::"char", retailer_id), ('g'::"char", region), ('o'::"char", mode),
                         ('R'::"char", CASE WHEN mode <> '' AND retailer_id <> '' THEN mode || ':' || retailer_id
                                            ELSE '' END))
             AS s (scope, scope_value)
    WHERE scope_value <> '' AND scope = ANY(scopes)
    GROUP BY GROUPING SETS ((scope, scope_value, campaign, day, currency),
                            (scope, scope_value, campaign, day, gtin, currency),
                            (scope, scope_value, campaign, day, retailer_id, currency),
                            (scope, scope_value, campaign, day, mode, currency),
                            (scope, scope_value, campaign, day, region, currency))
    -- Not a scope's own dimensions (its total is 'a'); by retailer and by mode only rows that have one.
    HAVING NOT (GROUPING(retailer_id) = 0 AND (scope IN ('r', 'R') OR retailer_id = ''))
       AND NOT (GROUPING(region) = 0 AND scope = 'g')
       AND NOT (GROUPING(mode) = 0 AND (scope IN ('o', 'R') OR mode = ''))
$$;

-- Months from the days of the scopes asked for.
CREATE FUNCTION stats_rollup_within_months(scopes "char"[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO stats_rollup_within (scope, scope_value, grain, dim, campaign, period, value, currency, loads, opens,
                                     searches, searches_with_offers, offers_shown, clicks, intent_cents)
    SELECT scope, scope_value, 'm', dim, campaign, date_trunc('month', period)::date, value, currency, sum(loads),
           sum(opens), sum(searches), sum(searches_with_offers), sum(offers_shown), sum(clicks), sum(intent_cents)
    FROM stats_rollup_within WHERE grain = 'd' AND scope = ANY(scopes)
    GROUP BY scope, scope_value, dim, campaign, date_trunc('month', period)::date, value, currency
    ORDER BY 1, 2, 4, 6;
$$;

CREATE OR REPLACE FUNCTION stats_rebuild_rollups() RETURNS void LANGUAGE sql AS $$
    SELECT stats_rebuild_rollups_unscoped();
    TRUNCATE stats_rollup_within;
    INSERT INTO stats_rollup_within (scope, scope_value, grain, dim, campaign, period, value, currency, loads, opens,
                                     searches, searches_with_offers, offers_shown, clicks, intent_cents)
    SELECT * FROM stats_rollup_within_days('{r,g,o,R}') ORDER BY 1, 2, 4, 6, 5;
    SELECT stats_rollup_within_months('{r,g,o,R}');
$$;

-- Figures counted so far get theirs within the new scopes.
INSERT INTO stats_rollup_within (scope, scope_value, grain, dim, campaign, period, value, currency, loads, opens,
                                 searches, searches_with_offers, offers_shown, clicks, intent_cents)
SELECT * FROM stats_rollup_within_days('{o,R}') ORDER BY 1, 2, 4, 6, 5;
SELECT stats_rollup_within_months('{o,R}');
