-- A tenant's Salesforce connection (docs/behaviour.md §1) and its user links (§2).
-- Only the token-broker reads private_key_ciphertext: it is AES-256-GCM
-- ciphertext under the key named by key_id, never the key in clear.
CREATE TABLE connections (
    tenant_id              text PRIMARY KEY,
    consumer_key           text        NOT NULL,
    username               text        NOT NULL,
    login_url              text        NOT NULL,
    instance_url           text        NOT NULL,
    organization_id        text,
    salesforce_user_id     text,
    objects                text[]      NOT NULL CHECK (cardinality(objects) > 0),
    key_id                 text        NOT NULL,
    private_key_ciphertext bytea       NOT NULL,
    status                 text        NOT NULL DEFAULT 'connected' CHECK (status IN ('connected', 'failing')),
    last_error             jsonb,
    connected_at           timestamptz NOT NULL DEFAULT now(),
    last_token_at          timestamptz
);

CREATE TABLE user_links (
    tenant_id            text        NOT NULL REFERENCES connections (tenant_id) ON DELETE CASCADE,
    user_id              text        NOT NULL,
    salesforce_user_id   text        NOT NULL,
    salesforce_user_name text        NOT NULL,
    linked_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
