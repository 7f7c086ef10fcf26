-- Statistics as brands know them (SPEC "Statistics"), counted exactly once.
--
-- stats_daily: one row per day x campaign x product x retailer x mode x region x currency, never finer.
-- Loads, opens and searches have no retailer or mode (''); offers shown, clicks and the purchase-intent
-- value have both. region is 'FR-75' (a French departement, 'FR-2A', 'FR-971'...) or a country ('BE'),
-- '' when unknown. currency is set on click rows only (the clicked offer's), '' elsewhere.
CREATE TABLE stats_daily (
    day          date NOT NULL,
    campaign     text NOT NULL,
    gtin         char(14) NOT NULL,
    retailer_id  text NOT NULL DEFAULT '',
    mode         text NOT NULL DEFAULT '',
    region       text NOT NULL DEFAULT '',
    currency     text NOT NULL DEFAULT '',
    loads        integer NOT NULL DEFAULT 0,
    opens        integer NOT NULL DEFAULT 0,
    searches     integer NOT NULL DEFAULT 0,
    searches_with_offers integer NOT NULL DEFAULT 0,
    offers_shown integer NOT NULL DEFAULT 0,
    clicks       integer NOT NULL DEFAULT 0,
    intent_cents bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign, day, gtin, retailer_id, mode, region, currency)
);
-- A retailer's statistics, one product's and one region's are read by those filters first.
CREATE INDEX stats_daily_retailer ON stats_daily (retailer_id, day) WHERE retailer_id <> '';
CREATE INDEX stats_daily_gtin ON stats_daily (gtin, day);
CREATE INDEX stats_daily_region ON stats_daily (region, day);

-- Roll-ups kept by the aggregator in the same transaction as stats_daily, so the dashboard's
-- unfiltered views read thousands of rows instead of millions: per day ('d') and per month
-- ('m', period = first day), per campaign, along one dimension: 'a' all (the daily series and
-- totals), 'p' product, 'r' retailer, 'o' mode, 'g' region; value is that dimension's key.
CREATE TABLE stats_rollup (
    grain        "char" NOT NULL,
    dim          "char" NOT NULL,
    campaign     text NOT NULL,
    period       date NOT NULL,
    value        text NOT NULL,
    currency     text NOT NULL DEFAULT '',
    loads        bigint NOT NULL DEFAULT 0,
    opens        bigint NOT NULL DEFAULT 0,
    searches     bigint NOT NULL DEFAULT 0,
    searches_with_offers bigint NOT NULL DEFAULT 0,
    offers_shown bigint NOT NULL DEFAULT 0,
    clicks       bigint NOT NULL DEFAULT 0,
    intent_cents bigint NOT NULL DEFAULT 0,
    -- A view reads one grain and dimension over a period, for every campaign or a few.
    PRIMARY KEY (grain, dim, period, campaign, value, currency)
);

-- Exactly once: the stream entries already counted, written in the same transaction as their
-- counts. A replay (a crash between COMMIT and XACK, two aggregators on the same pending
-- entries) finds its ids here and counts nothing. Rows older than the oldest entry still in
-- the stream can never be delivered again and are pruned. Events a worker kept through a Redis
-- outage carry a random event id instead (stream '<key>#eid', ms = the id): a batch its flusher
-- wrote twice counts once.
CREATE TABLE stats_entries_counted (
    stream  text NOT NULL,
    ms      bigint NOT NULL,
    seq     bigint NOT NULL,
    -- Pruning waits a while after the count, for an aggregator still busy with a copy of the entry.
    counted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, ms, seq)
);

-- Roll-ups of stats_daily rows already there (after a bulk load, e.g. benchmarks/stats.py, or the
-- counts moved over below); the aggregator keeps them up to date itself.
CREATE FUNCTION stats_rebuild_rollups() RETURNS void LANGUAGE sql AS $$
    TRUNCATE stats_rollup;
    -- One scan of stats_daily for the five daily roll-ups, then months from days.
    INSERT INTO stats_rollup (grain, dim, campaign, period, value, currency, loads, opens, searches,
                              searches_with_offers, offers_shown, clicks, intent_cents)
    SELECT 'd'::"char",
           (CASE WHEN GROUPING(gtin) = 0 THEN 'p' WHEN GROUPING(retailer_id) = 0 THEN 'r'
                 WHEN GROUPING(mode) = 0 THEN 'o' WHEN GROUPING(region) = 0 THEN 'g' ELSE 'a' END)::"char",
           campaign, day, coalesce(gtin::text, retailer_id, mode, region, ''), currency,
           sum(loads), sum(opens), sum(searches), sum(searches_with_offers), sum(offers_shown), sum(clicks),
           sum(intent_cents)
    FROM stats_daily
    GROUP BY GROUPING SETS ((campaign, day, currency), (campaign, day, gtin, currency),
                            (campaign, day, retailer_id, currency), (campaign, day, mode, currency),
                            (campaign, day, region, currency))
    -- By retailer and by mode only rows that have one (loads, opens and searches have neither).
    HAVING NOT (GROUPING(retailer_id) = 0 AND retailer_id = '') AND NOT (GROUPING(mode) = 0 AND mode = '')
    -- Stored in the order views read them (one dimension over a period), as the aggregator's
    -- day-by-day writes would leave them: not scattered in hash order over every page.
    ORDER BY 2, 4, 3;
    INSERT INTO stats_rollup (grain, dim, campaign, period, value, currency, loads, opens, searches,
                              searches_with_offers, offers_shown, clicks, intent_cents)
    SELECT 'm', dim, campaign, date_trunc('month', period)::date, value, currency, sum(loads), sum(opens),
           sum(searches), sum(searches_with_offers), sum(offers_shown), sum(clicks), sum(intent_cents)
    FROM stats_rollup WHERE grain = 'd'
    GROUP BY dim, campaign, date_trunc('month', period)::date, value, currency
    ORDER BY 2, 4, 3;
$$;

-- The counts kept so far move over (a country was the finest place kept); clicks were counted both
-- from the widget's beacon and from /v1/go then, so those click figures may be up to twice the
-- truth. event_counts then goes.
INSERT INTO stats_daily (day, campaign, gtin, retailer_id, region, loads, opens, searches, clicks)
SELECT day, campaign, gtin, CASE WHEN kind = 'click' THEN retailer_id ELSE '' END, country,
       coalesce(sum(count) FILTER (WHERE kind = 'impression'), 0),
       coalesce(sum(count) FILTER (WHERE kind = 'open'), 0),
       coalesce(sum(count) FILTER (WHERE kind = 'offers_shown'), 0),
       coalesce(sum(count) FILTER (WHERE kind = 'click'), 0)
FROM event_counts
WHERE kind IN ('impression', 'open', 'offers_shown', 'click') AND campaign <> ''
GROUP BY 1, 2, 3, 4, 5;
SELECT stats_rebuild_rollups();
DROP TABLE event_counts;
