-- The back office (backoffice/): the people who log in, the versions of every campaign they save,
-- and the API tokens an admin mints for machines.

-- One row per person; `role` as in the admin JWT: 'admin', 'brand:<id>' or 'retailer:<id>'.
CREATE TABLE users (
    email               text PRIMARY KEY CHECK (email = lower(email)),
    role                text NOT NULL,
    -- argon2id, PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
    password_hash       text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    -- A session opened before the last password change is no longer honoured.
    password_changed_at timestamptz NOT NULL DEFAULT now()
);

-- Every saved state of a campaign, numbered from 1 per campaign; never updated, never deleted
-- while the campaign exists. `author` is an email, a token's subject, or '' for a save made
-- outside the back office (adopted into the history at the next save).
CREATE TABLE campaign_versions (
    campaign_id   text NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    version       integer NOT NULL CHECK (version > 0),
    author        text NOT NULL,
    saved_at      timestamptz NOT NULL DEFAULT now(),
    body          jsonb NOT NULL,
    restored_from integer,
    PRIMARY KEY (campaign_id, version)
);

-- API tokens minted from the back office (the JWT itself is shown once and never stored).
CREATE TABLE api_tokens (
    jti         text PRIMARY KEY,
    role        text NOT NULL,
    label       text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    revoked_by  text
);
