-- The activity-writer's state (docs/behaviour.md §4: one Task per event, one
-- record per new customer).

-- One row per assist event the writer has tried to write a Task for. The row
-- is written 'pending' before the sObject Collections call that creates the
-- Task and 'written' once Salesforce answered with the Task's id. A
-- 'pending' row met again means an earlier attempt's outcome is unknown (a
-- crash between Salesforce's answer and this table, or an answer lost after
-- Salesforce committed): the writer settles it by one SOQL on
-- Task.CallObject for the whole batch before it writes anything again.
CREATE TABLE activity_ledger (
    tenant_id      text        NOT NULL,
    event_id       text        NOT NULL,
    state          text        NOT NULL CHECK (state IN ('pending', 'written')),
    task_id        text,
    target_object  text        CHECK (target_object IN ('Lead', 'Contact', 'Account')),
    target_id      text,
    owner_id       text,
    owner_fallback boolean,
    -- How this event's customer was newly tied to the target (rules 3 and
    -- 4), so a redelivery announces customer.linked again if it was lost.
    linked_how     text        CHECK (linked_how IN ('matched_phone', 'matched_email', 'matched_duplicate_rule', 'created')),
    attempts       integer     NOT NULL DEFAULT 1,
    -- The writer process that began the newest attempt (for the logs); no
    -- writer begins a pending row again until it is a while old, since
    -- Salesforce may still commit a create whose answer was lost.
    writer         text        NOT NULL DEFAULT '',
    written_at     timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id),
    CHECK (state = 'pending' OR (task_id IS NOT NULL AND target_id IS NOT NULL AND written_at IS NOT NULL))
);

-- The record the writer tied a Front Agent customer to (matched by phone or
-- email, created, or named by a duplicate rule), so the customer's next
-- event goes to the same record without matching again.
CREATE TABLE customer_links (
    tenant_id   text        NOT NULL,
    customer_id text        NOT NULL,
    object      text        NOT NULL CHECK (object IN ('Lead', 'Contact', 'Account')),
    record_id   text        NOT NULL,
    how         text        NOT NULL CHECK (how IN ('matched_phone', 'matched_email', 'matched_duplicate_rule', 'created')),
    linked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, customer_id)
);

-- A claim on a new customer's identity (its first E.164 number, else its
-- e-mail, else Front Agent's customer id), taken before the record is
-- created, so two events for one new caller handled by two replicas at once
-- create one record: the loser waits for the winner's record_id.
CREATE TABLE customer_claims (
    tenant_id  text        NOT NULL,
    identity   text        NOT NULL,
    claimed_by text        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    object     text        CHECK (object IN ('Lead', 'Contact', 'Account')),
    record_id  text,
    how        text        CHECK (how IN ('matched_duplicate_rule', 'created')),
    PRIMARY KEY (tenant_id, identity)
);
