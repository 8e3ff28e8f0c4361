-- Alert bridge v2: label values stored exactly and safely (bytes, unique by hash, range
-- scanned by prefix), label pairs cleaned up by retention (so episode_labels references them),
-- re-fires, reconciliation reasons, one writer at a time, a readiness probe row.

ALTER TABLE episodes ADD COLUMN resolved_seen INTEGER;    -- when the resolution was received
UPDATE episodes SET resolved_seen = last_seen WHERE status = 'resolved';

ALTER TABLE notifications ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN compat_alert_id INTEGER;

-- label_pairs: value as bytes (exact, any length), hash = SHA-256(name 0xFF value) as the key
-- (filled in by the bridge for migrated rows), vprefix = first 128 bytes for range scans.
CREATE TABLE label_pairs_v2 (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL,
    value   BLOB NOT NULL,
    vprefix BLOB NOT NULL,
    hash    BLOB UNIQUE
);
INSERT INTO label_pairs_v2 (id, name, value, vprefix, hash)
    SELECT id, name, CAST(value AS BLOB), substr(CAST(value AS BLOB), 1, 128), NULL FROM label_pairs;
CREATE TABLE episode_labels_v2 (
    pair_id    INTEGER NOT NULL REFERENCES label_pairs_v2 (id),
    episode_id INTEGER NOT NULL REFERENCES episodes (id) ON DELETE CASCADE,
    PRIMARY KEY (pair_id, episode_id)
) WITHOUT ROWID;
INSERT INTO episode_labels_v2 (pair_id, episode_id) SELECT pair_id, episode_id FROM episode_labels;
DROP TABLE episode_labels;
DROP TABLE label_pairs;
ALTER TABLE label_pairs_v2 RENAME TO label_pairs;
ALTER TABLE episode_labels_v2 RENAME TO episode_labels;
CREATE INDEX label_pairs_name_prefix ON label_pairs (name, vprefix);
CREATE INDEX episode_labels_episode ON episode_labels (episode_id);

-- One row; every write transaction reads it first (SQLite: under BEGIN IMMEDIATE). pairs_epoch
-- changes whenever retention deletes label pairs, so that cached pair ids are dropped.
CREATE TABLE writer_lock (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    pairs_epoch INTEGER NOT NULL
);
INSERT INTO writer_lock (id, pairs_epoch) VALUES (1, 0);

-- The readiness probe commits here.
CREATE TABLE health (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at INTEGER NOT NULL
);
INSERT INTO health (id, checked_at) VALUES (1, 0);
