-- Pulled feeds and data quality (SPEC "Data quality"): where each retailer's feeds come from, what each
-- feed run brought per retailer, and the figures `nearcart quality check` computes for /metrics and the
-- back office.

-- A feed nearcart fetches itself (`nearcart feeds pull`), one URL per retailer and feed kind.
CREATE TABLE retailer_feeds (
    retailer_id     text NOT NULL REFERENCES retailers (retailer_id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('stores', 'offers', 'products')),
    url             text NOT NULL,
    -- Pulled when this many seconds have passed since the last pull.
    interval_s      integer NOT NULL DEFAULT 3600 CHECK (interval_s >= 60),
    -- Validators the retailer's server gave with the last body we ingested (sent back conditionally).
    etag            text,
    last_modified   text,
    last_pulled_at  timestamptz,
    -- 'ingested', 'not modified', 'rejected rows', or what went wrong ('timeout', 'HTTP 404', ...).
    last_status     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (retailer_id, kind)
);

-- Who a feed run was for, and how many of its rows each retailer's were (an operator's nearcart CSV
-- may carry several retailers).
CREATE TABLE feed_run_retailers (
    run_id         bigint NOT NULL REFERENCES feed_runs (id) ON DELETE CASCADE,
    retailer_id    text NOT NULL REFERENCES retailers (retailer_id) ON DELETE CASCADE,
    rows_read      bigint NOT NULL,
    rows_rejected  bigint NOT NULL,
    PRIMARY KEY (retailer_id, run_id)
);
CREATE INDEX feed_run_retailers_run ON feed_run_retailers (run_id);

-- Per retailer and kind: kept up to date by every feed run, so the feed's age is right between checks.
CREATE TABLE retailer_feed_health (
    retailer_id      text NOT NULL REFERENCES retailers (retailer_id) ON DELETE CASCADE,
    kind             text NOT NULL,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_run_at      timestamptz NOT NULL,
    last_success_at  timestamptz,
    -- The last run that read rows of this retailer: its share of rejected rows.
    rejected_ratio   double precision NOT NULL DEFAULT 0,
    -- Set by the quality check: the last run's ratio minus the mean of the runs before it (positive: worse).
    rejected_trend   double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (retailer_id, kind)
);

-- The retailer's choice for offers not confirmed within NEARCART_UNCONFIRMED_AFTER_S: shown (and
-- counted) or hidden from shoppers until its feed confirms them again.
ALTER TABLE retailers ADD COLUMN unconfirmed_offers text NOT NULL DEFAULT 'show'
    CHECK (unconfirmed_offers IN ('show', 'hide'));

-- Offers the quality check took out of the index for a retailer that hides unconfirmed ones, with the
-- `updated_at` they had: an offer updated since is confirmed again and back in the index.
CREATE TABLE offers_hidden (
    retailer_id  text NOT NULL REFERENCES retailers (retailer_id) ON DELETE CASCADE,
    store_id     text NOT NULL,
    gtin         char(14) NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (retailer_id, store_id, gtin)
);

-- The last quality check's figures per retailer (feed figures are in retailer_feed_health).
CREATE TABLE retailer_quality (
    retailer_id         text PRIMARY KEY REFERENCES retailers (retailer_id) ON DELETE CASCADE,
    checked_at          timestamptz NOT NULL,
    offers              bigint NOT NULL,
    offers_unconfirmed  bigint NOT NULL,
    price_outliers      bigint NOT NULL,
    stores              bigint NOT NULL,
    stores_approximate  bigint NOT NULL,
    links_checked       integer NOT NULL,
    links_failing       integer NOT NULL,
    -- A few failing links with why (shown to the retailer): [{"url": ..., "reason": ...}].
    link_failures       jsonb NOT NULL DEFAULT '[]'
);
