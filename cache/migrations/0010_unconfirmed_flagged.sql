-- Offers not confirmed for too long are either hidden from shoppers or shown flagged "unconfirmed"
-- (the retailer's `unconfirmed_offers`, 'hide' or 'show'). The quality check notes each such offer here,
-- with the `updated_at` it had and how the index holds it: left out (`hidden`) or flagged in its
-- member. An offer updated since is confirmed again: the next check (or the ingest that rewrote its
-- member) turns it back into a plain offer. Replaces `offers_hidden` (0007), whose rows are the
-- hidden ones.
CREATE TABLE offers_unconfirmed (
    retailer_id  text NOT NULL REFERENCES retailers (retailer_id) ON DELETE CASCADE,
    store_id     text NOT NULL,
    gtin         char(14) NOT NULL,
    updated_at   timestamptz NOT NULL,
    hidden       boolean NOT NULL,
    PRIMARY KEY (retailer_id, store_id, gtin)
);

INSERT INTO offers_unconfirmed (retailer_id, store_id, gtin, updated_at, hidden)
SELECT retailer_id, store_id, gtin, updated_at, true FROM offers_hidden;

DROP TABLE offers_hidden;
