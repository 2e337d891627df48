-- The importer's state (docs/behaviour.md §3, §5).

-- Where each object's import stands: the last record whose customer.upsert
-- the broker confirmed, as (SystemModstamp, Id). organization_id is the org
-- it was read from: a connection re-registered to another org starts over.
CREATE TABLE import_watermarks (
    tenant_id       text        NOT NULL,
    object          text        NOT NULL CHECK (object IN ('Lead', 'Contact', 'Account')),
    organization_id text        NOT NULL,
    modified_at     timestamptz NOT NULL,
    record_id       text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, object)
);

-- One row per run; `running` rows of a crashed process are marked failed
-- (`interrupted`) when the tenant's next run starts.
CREATE TABLE import_runs (
    run_id       text        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    reason       text        NOT NULL CHECK (reason IN ('connected', 'scheduled', 'manual', 'catch_up')),
    status       text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    objects      jsonb       NOT NULL DEFAULT '[]',
    more_pending boolean     NOT NULL DEFAULT false,
    error        jsonb
);
CREATE INDEX import_runs_by_tenant ON import_runs (tenant_id, started_at DESC);

-- When each tenant runs next, and whether it is paused for its API
-- allowance. Claimed by the schedulers of all replicas with SKIP LOCKED.
CREATE TABLE import_schedule (
    tenant_id     text        PRIMARY KEY,
    next_run_at   timestamptz NOT NULL,
    more_pending  boolean     NOT NULL DEFAULT false,
    paused_until  timestamptz,
    pause_reason  text
);
