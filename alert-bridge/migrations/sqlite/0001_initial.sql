-- Alert episodes: one row per (fingerprint, startsAt). Times are milliseconds since the epoch.
CREATE TABLE episodes (
    id            INTEGER PRIMARY KEY,
    fingerprint   TEXT    NOT NULL,
    starts_at     INTEGER NOT NULL,
    ends_at       INTEGER,               -- NULL while firing
    status        TEXT    NOT NULL CHECK (status IN ('firing', 'resolved')),
    alertname     TEXT    NOT NULL,
    severity      TEXT    NOT NULL,
    instance      TEXT    NOT NULL,      -- label instance, else node
    labels        TEXT    NOT NULL,      -- canonical JSON object
    annotations   TEXT    NOT NULL,      -- canonical JSON object (latest)
    generator_url TEXT    NOT NULL,
    receiver      TEXT    NOT NULL,
    group_key     TEXT    NOT NULL,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    notifications INTEGER NOT NULL,      -- deliveries seen (HA duplicates and resends included)
    changed_at    INTEGER NOT NULL,      -- value of notifications at the last state change
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX episodes_starts_at ON episodes (starts_at);
CREATE INDEX episodes_ends_at ON episodes (ends_at);
CREATE INDEX episodes_last_seen ON episodes (last_seen);
CREATE INDEX episodes_status ON episodes (status, starts_at);
CREATE INDEX episodes_alertname ON episodes (alertname, starts_at);
CREATE INDEX episodes_severity ON episodes (severity, starts_at);

-- Distinct label pairs, and which episodes carry them (for label matchers).
CREATE TABLE label_pairs (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL,
    value TEXT NOT NULL,
    UNIQUE (name, value)
);
CREATE TABLE episode_labels (
    pair_id    INTEGER NOT NULL,
    episode_id INTEGER NOT NULL REFERENCES episodes (id) ON DELETE CASCADE,
    PRIMARY KEY (pair_id, episode_id)
) WITHOUT ROWID;
CREATE INDEX episode_labels_episode ON episode_labels (episode_id);

-- State changes of an episode (first notification, annotation changes, resolution).
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    episode_id  INTEGER NOT NULL REFERENCES episodes (id) ON DELETE CASCADE,
    received_at INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    ends_at     INTEGER,
    annotations TEXT    NOT NULL,
    receiver    TEXT    NOT NULL,
    group_key   TEXT    NOT NULL
);
CREATE INDEX notifications_episode ON notifications (episode_id);
