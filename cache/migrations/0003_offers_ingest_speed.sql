-- Offer ingest speed (nearcart ingest offers, millions of rows a day).
-- The retailer of every offer row is checked in Python before COPY (unknown retailers are rejected
-- with their line number), so the foreign key only repeated that check once per row in a trigger:
-- about a fifth of PostgreSQL's time on new offers. Retailers are never deleted.
ALTER TABLE offers DROP CONSTRAINT IF EXISTS offers_retailer_id_fkey;
-- Nothing looks offers up by GTIN alone: the index build reads every offer (a sort costs it nothing
-- measurable at 1M offers) and the admin API filters by retailer first (the primary key). Keeping
-- the index up to date cost about 2 us per new offer, a fifth of PostgreSQL's time.
DROP INDEX IF EXISTS offers_gtin;
