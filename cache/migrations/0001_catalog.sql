-- The catalog: PostgreSQL is the source of truth; Redis only holds a derived index.

CREATE TABLE retailers (
    retailer_id        text PRIMARY KEY,
    -- Small stable number used in the Redis index instead of the id (saves bytes per offer).
    num                integer GENERATED ALWAYS AS IDENTITY UNIQUE,
    name               text NOT NULL,
    logo_url           text NOT NULL DEFAULT '',
    cart_url_template  text NOT NULL,
    delivery_countries text[] NOT NULL DEFAULT '{}',
    delivery_zones     jsonb,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE stores (
    retailer_id  text NOT NULL REFERENCES retailers (retailer_id),
    store_id     text NOT NULL,
    num          integer GENERATED ALWAYS AS IDENTITY UNIQUE,
    name         text NOT NULL,
    address      text NOT NULL DEFAULT '',
    postal_code  text NOT NULL DEFAULT '',
    city         text NOT NULL DEFAULT '',
    country      char(2) NOT NULL,
    lat          double precision NOT NULL,
    lon          double precision NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (retailer_id, store_id)
);

CREATE TABLE products (
    gtin       char(14) PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    brand      text NOT NULL DEFAULT '',
    image_url  text NOT NULL DEFAULT ''
);

-- store_id '' is an online (delivery) offer.
CREATE TABLE offers (
    retailer_id  text NOT NULL REFERENCES retailers (retailer_id),
    store_id     text NOT NULL DEFAULT '',
    gtin         char(14) NOT NULL,
    price        numeric(12, 2) NOT NULL,
    currency     char(3) NOT NULL,
    quantity     integer NOT NULL CHECK (quantity >= 0),
    modes        smallint NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (retailer_id, store_id, gtin)
);
CREATE INDEX offers_gtin ON offers (gtin);

CREATE TABLE campaigns (
    id          text PRIMARY KEY,
    brand       text NOT NULL,
    body        jsonb NOT NULL,
    etag        text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE feed_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL,
    files        text[] NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    rows_read    bigint NOT NULL DEFAULT 0,
    rows_loaded  bigint NOT NULL DEFAULT 0,
    rows_rejected bigint NOT NULL DEFAULT 0,
    status       text NOT NULL DEFAULT 'running',
    -- First rejected rows with line, field and reason (capped; the printed report has them all).
    rejects      jsonb NOT NULL DEFAULT '[]'
);

-- Statistics: aggregated counts only (no shopper identifier, location at most the city).
CREATE TABLE event_counts (
    day        date NOT NULL,
    campaign   text NOT NULL,
    gtin       char(14) NOT NULL,
    kind       text NOT NULL,
    retailer_id text NOT NULL DEFAULT '',
    country    text NOT NULL DEFAULT '',
    count      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, campaign, gtin, kind, retailer_id, country)
);
