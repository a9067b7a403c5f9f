-- +goose Up
-- What later messages call a delivery's message, if anything: the
-- message that announced an incident ('incident/<id>'), whose thread the
-- rest goes to; an approval card ('card/<repair id>'), which its decision
-- edits. Replies wait for it by this name.
ALTER TABLE deliveries ADD COLUMN ref text NOT NULL DEFAULT '';
UPDATE deliveries SET ref = 'incident/' || incident_id
    WHERE subject = 'incident.opened' AND incident_id <> '';
UPDATE deliveries SET ref = 'card/' || repair_id
    WHERE subject = 'repair.approval_requested' AND repair_id <> '';
CREATE INDEX deliveries_ref ON deliveries (ref, channel, target) WHERE ref <> '';
-- Replies looked their parent up by incident and by repair; they use ref.
DROP INDEX deliveries_incident;
DROP INDEX deliveries_repair;

-- A reply whose parent (ref) is not sent yet on a channel waits here,
-- with its event, instead of the event being redelivered until it is:
-- the event is acknowledged once this row is committed. Recording the
-- parent's delivery for good (sent or failed) makes its replies due
-- (due_at) in the same transaction; a reply whose parent never comes is
-- due after notify's reply wait, and then goes out unthreaded. Sending it
-- takes the row for a lease (due_at in the future); recording its own
-- delivery for good deletes it.
CREATE TABLE parked_replies (
    event_id   text        NOT NULL,
    channel    text        NOT NULL,
    target     text        NOT NULL,
    parent     text        NOT NULL,
    subject    text        NOT NULL,
    payload    bytea       NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT now(),
    due_at     timestamptz,
    PRIMARY KEY (event_id, channel)
);
CREATE INDEX parked_replies_parent ON parked_replies (parent, channel, target) WHERE due_at IS NULL;
CREATE INDEX parked_replies_parked_at ON parked_replies (channel, target, parked_at);

-- +goose Down
DROP TABLE parked_replies;
CREATE INDEX deliveries_repair ON deliveries (repair_id, channel, target) WHERE repair_id <> '';
CREATE INDEX deliveries_incident ON deliveries (incident_id, channel, target) WHERE incident_id <> '';
DROP INDEX deliveries_ref;
ALTER TABLE deliveries DROP COLUMN ref;
