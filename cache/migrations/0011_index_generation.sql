-- The generation the Redis index should be at, per key prefix (issue 17): a write the index lost
-- (Redis failed after the catalog committed, or a failover promoted a replica that never received the
-- last writes) shows as Redis holding another generation than this one.
--
-- `offers`: bumped in the same transaction as every catalog change the index's offer keys must follow
-- (an ingest batch that changed offers, stores that moved, the quality check's hide/show), always by a
-- writer holding the index writer lock (cache/index.py); the writer records it in Redis once its index
-- writes succeeded, `nearcart index build` records the one it built from.
-- `directory`: bumped with every change of stores or retailers; a directory refresh records the one it
-- read before copying them.
-- cache/index_generation.py reads and writes these rows; the API's index healer compares them with Redis.
CREATE TABLE index_generations (
    -- NEARCART_REDIS_PREFIX of the index this generation is for.
    prefix      text NOT NULL,
    part        text NOT NULL CHECK (part IN ('offers', 'directory')),
    generation  bigint NOT NULL CHECK (generation >= 0),
    PRIMARY KEY (prefix, part)
);
