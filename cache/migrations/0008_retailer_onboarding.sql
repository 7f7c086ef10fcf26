-- Retailers who join by themselves (backoffice/onboarding.py) and upload their feeds (backoffice/feed_uploads.py).

-- One-time invitation links an admin hands a retailer. Only the SHA-256 of the link's token is kept,
-- so a copy of the database opens no invitation; `used_at` set means it was spent.
CREATE TABLE retailer_invites (
    token_hash  text PRIMARY KEY,
    retailer_id text NOT NULL,
    email       text NOT NULL CHECK (email = lower(email)),
    invited_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX retailer_invites_retailer ON retailer_invites (retailer_id, created_at DESC);

-- Every basket-link template a retailer has had: who set it, when, what it replaced.
-- Filled by a trigger, so a change through the back office (which names its author in the
-- transaction's `nearcart.actor` setting) and one through a retailers feed are both recorded.
CREATE TABLE retailer_template_changes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    retailer_id  text NOT NULL,
    changed_by   text NOT NULL,
    changed_at   timestamptz NOT NULL DEFAULT now(),
    old_template text,
    new_template text NOT NULL
);
CREATE INDEX retailer_template_changes_retailer ON retailer_template_changes (retailer_id, id DESC);

CREATE FUNCTION record_template_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR OLD.cart_url_template IS DISTINCT FROM NEW.cart_url_template THEN
        INSERT INTO retailer_template_changes (retailer_id, changed_by, old_template, new_template)
        VALUES (NEW.retailer_id, coalesce(nullif(current_setting('nearcart.actor', true), ''), 'retailers feed'),
                CASE WHEN TG_OP = 'UPDATE' THEN OLD.cart_url_template END, NEW.cart_url_template);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER retailers_template_history AFTER INSERT OR UPDATE OF cart_url_template ON retailers
    FOR EACH ROW EXECUTE FUNCTION record_template_change();

-- Whose feed a run loaded (NULL: a run over several retailers' rows, e.g. `nearcart ingest` without --retailer).
-- IF NOT EXISTS: the data-quality work may add the same column.
ALTER TABLE feed_runs ADD COLUMN IF NOT EXISTS retailer_id text;
CREATE INDEX IF NOT EXISTS feed_runs_retailer ON feed_runs (retailer_id, started_at DESC);

-- Feeds uploaded through the back office or PUT /admin/v1/retailers/{id}/feeds/{kind}. `report` is the
-- ingest report (IngestReport as JSON, its first rejects included) once the run has ended.
CREATE TABLE feed_uploads (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    retailer_id  text NOT NULL,
    kind         text NOT NULL,
    uploaded_by  text NOT NULL,
    bytes        bigint NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    -- 'running', then 'ok', 'rejected rows' or 'failed' (as feed_runs.status)
    status       text NOT NULL DEFAULT 'running',
    run_id       bigint,
    report       jsonb
);
CREATE INDEX feed_uploads_retailer ON feed_uploads (retailer_id, id DESC);
