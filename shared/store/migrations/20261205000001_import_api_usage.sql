-- The org's daily API usage as the importer last read it from
-- Sforce-Limit-Info (docs/behaviour.md §5). Every importer replica reports
-- fa_salesforce_api_usage_ratio from this row, not from what it happened to
-- read itself, so a reading taken by one replica replaces the older one on
-- all of them. read_at is the database's clock: a reading never replaces a
-- newer one.
CREATE TABLE import_api_usage (
    tenant_id text        PRIMARY KEY,
    used      bigint      NOT NULL CHECK (used >= 0),
    max       bigint      NOT NULL CHECK (max > 0),
    read_at   timestamptz NOT NULL DEFAULT now()
);
