-- The records the importer has published, by what the activity-writer
-- matches a caller on (docs/behaviour.md §4, case 3): their E.164 numbers and
-- their e-mail. Salesforce's search index (SOSL) lags new and changed
-- records by minutes, so the writer looks here first: what the importer has
-- already seen is found at once, and in E.164, however the number is stored.
--
-- Written by the importer once the broker confirmed a record's
-- customer.upsert (before the watermark moves past it, so the index is never
-- behind the watermark); a row moves only forward in modified_at.
-- organization_id is the org the record was read from: a connection
-- re-registered to another org (a refreshed sandbox keeps record ids) does
-- not match the old org's rows.
CREATE TABLE customer_index (
    tenant_id       text        NOT NULL,
    object          text        NOT NULL CHECK (object IN ('Lead', 'Contact', 'Account')),
    record_id       text        NOT NULL,
    -- E.164 forms only (numbers that could not be normalised are left out),
    -- never an empty or NULL element (written '?', which is no number).
    phones          text[]      NOT NULL CHECK (cardinality(phones) = 0
        OR array_to_string(phones, ' ', '?') ~ '^\+[1-9][0-9]{6,14}( \+[1-9][0-9]{6,14})*$'),
    -- Lower-cased, so the writer compares case-insensitively with '='.
    email           text,
    -- SystemModstamp of the version indexed.
    modified_at     timestamptz NOT NULL,
    converted       boolean     NOT NULL DEFAULT false,
    organization_id text        NOT NULL,
    PRIMARY KEY (tenant_id, object, record_id)
);
CREATE INDEX customer_index_by_phone ON customer_index USING gin (phones);
CREATE INDEX customer_index_by_email ON customer_index (tenant_id, email);

COMMENT ON TABLE customer_index IS
    'Records the importer published, by E.164 phone and lower-cased e-mail: the activity-writer matches callers here because SOSL lags new records by minutes.';
