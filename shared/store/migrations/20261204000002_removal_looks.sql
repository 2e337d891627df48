-- Where each object's look for records purged before a run saw them
-- deleted stands (docs/behaviour.md §3, "Customers leave Front Agent"): the
-- replication API's deleted list is asked from `looked_until` on (its
-- latestDateCovered last time), and ids are compared with Salesforce's at
-- most once a day (`compared_at`), or at once when the list no longer
-- reaches back to `looked_until`. Written only after the removals a look
-- found were confirmed and forgotten by the customer index, so a look that
-- fails part-way is made again. A row of another org (the connection was
-- re-registered) counts as no row.
CREATE TABLE import_removal_looks (
    tenant_id       text        NOT NULL,
    object          text        NOT NULL CHECK (object IN ('Lead', 'Contact', 'Account')),
    organization_id text        NOT NULL,
    looked_until    timestamptz NOT NULL,
    compared_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, object)
);
