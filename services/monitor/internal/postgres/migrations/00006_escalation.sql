-- +goose Up
-- How urgent an incident is (types.v1.Priority: 1 = P0 ... 4 = P3), and
-- who set it by hand ("": the rules did, and alerts may still raise it).
ALTER TABLE incidents ADD COLUMN priority int NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN priority_by text NOT NULL DEFAULT '';

-- On-call schedules, escalation policies and the priority rules, each as
-- its API message (protojson). from_file: defined by the escalation file
-- (VIGIL_ESCALATION_FILE), which the API does not change.
CREATE TABLE oncall_schedules (
    name       text PRIMARY KEY,
    team       text NOT NULL,
    spec       jsonb NOT NULL,
    from_file  boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL DEFAULT ''
);
CREATE INDEX oncall_schedules_team ON oncall_schedules (team, name);

CREATE TABLE escalation_policies (
    name       text PRIMARY KEY,
    team       text NOT NULL,
    spec       jsonb NOT NULL,
    from_file  boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL DEFAULT ''
);

CREATE TABLE priority_rules (
    id         int PRIMARY KEY CHECK (id = 1),
    spec       jsonb NOT NULL,
    from_file  boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL DEFAULT ''
);

-- Where each incident's escalation is: its policy (as it was when the
-- incident was planned), the steps taken (level), when the next is due
-- (NULL: no more), and a snooze. Replicas take due rows with SKIP LOCKED.
CREATE TABLE escalations (
    incident_id   uuid PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    policy        text NOT NULL,
    level         int NOT NULL DEFAULT 0,
    due_at        timestamptz,
    snoozed_until timestamptz,
    snoozed_by    text NOT NULL DEFAULT '',
    stopped       text NOT NULL DEFAULT ''
);
CREATE INDEX escalations_due ON escalations (due_at) WHERE due_at IS NOT NULL;

-- +goose Down
DROP TABLE escalations;
DROP TABLE priority_rules;
DROP TABLE escalation_policies;
DROP TABLE oncall_schedules;
ALTER TABLE incidents DROP COLUMN priority_by;
ALTER TABLE incidents DROP COLUMN priority;
