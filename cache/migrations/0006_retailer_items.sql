-- Feeds retailers already have (Google local inventory, Google Business Profile sheets).
-- A Google local inventory names items by the retailer's own id; its product feed maps each id to a GTIN.
-- `nearcart ingest products` fills this table and `nearcart ingest offers` reads it (one retailer at a time).
CREATE TABLE retailer_items (
    retailer_id  text NOT NULL REFERENCES retailers (retailer_id),
    item_id      text NOT NULL,
    gtin         char(14) NOT NULL,
    PRIMARY KEY (retailer_id, item_id)
);

-- A store whose feed gave no coordinates is placed at its postal code's centre: shoppers are told
-- its distance is approximate ("about 3 km").
ALTER TABLE stores ADD COLUMN approximate boolean NOT NULL DEFAULT false;
