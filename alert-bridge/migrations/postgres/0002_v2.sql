-- Alert bridge v2: label values stored exactly and safely (bytes, unique by hash: a long value
-- no longer overflows the B-tree index, a NUL byte is no longer rejected), label pairs
-- cleaned up by retention (so episode_labels references them), re-fires, reconciliation
-- reasons, one writer at a time (also across bridges), a readiness probe row.

ALTER TABLE episodes ADD COLUMN resolved_seen BIGINT;
UPDATE episodes SET resolved_seen = last_seen WHERE status = 'resolved';

ALTER TABLE notifications ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN compat_alert_id BIGINT;

ALTER TABLE label_pairs DROP CONSTRAINT label_pairs_name_value_key;
ALTER TABLE label_pairs ALTER COLUMN value TYPE BYTEA USING convert_to(value, 'UTF8');
ALTER TABLE label_pairs ADD COLUMN vprefix BYTEA;
ALTER TABLE label_pairs ADD COLUMN hash BYTEA;
UPDATE label_pairs SET vprefix = substring(value FROM 1 FOR 128),
    hash = sha256(convert_to(name, 'UTF8') || '\xff'::bytea || value);
ALTER TABLE label_pairs ALTER COLUMN vprefix SET NOT NULL;
ALTER TABLE label_pairs ALTER COLUMN hash SET NOT NULL;
ALTER TABLE label_pairs ADD CONSTRAINT label_pairs_hash_key UNIQUE (hash);
CREATE INDEX label_pairs_name_prefix ON label_pairs (name, vprefix);
ALTER TABLE episode_labels ADD CONSTRAINT episode_labels_pair_fk
    FOREIGN KEY (pair_id) REFERENCES label_pairs (id);

CREATE TABLE writer_lock (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    pairs_epoch BIGINT NOT NULL
);
INSERT INTO writer_lock (id, pairs_epoch) VALUES (1, 0);

CREATE TABLE health (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at BIGINT NOT NULL
);
INSERT INTO health (id, checked_at) VALUES (1, 0);
