-- hpcmon-actions journal. Times are milliseconds since the Unix epoch.

-- One row per decision: an action to apply (or revert), with its current state.
CREATE TABLE actions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    -- rule|fingerprint|startsAt|phase: Alertmanager's repeated notifications hit this key.
    idem_key       TEXT    NOT NULL UNIQUE,
    created_ms     INTEGER NOT NULL,
    updated_ms     INTEGER NOT NULL,
    rule           TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    phase          TEXT    NOT NULL,           -- apply | revert
    revert_of      INTEGER REFERENCES actions(id),
    priority       INTEGER NOT NULL,
    mode           TEXT    NOT NULL,           -- enforce | dry-run
    alertname      TEXT    NOT NULL,
    fingerprint    TEXT    NOT NULL,
    starts_ms      INTEGER NOT NULL,
    labels         TEXT    NOT NULL,           -- JSON object
    targets        TEXT    NOT NULL,           -- JSON (crate::target::Targets), '' when refused
    reason         TEXT    NOT NULL,
    hold_off_ms    INTEGER NOT NULL,
    max_nodes      INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    detail         TEXT    NOT NULL DEFAULT '',
    not_before_ms  INTEGER,
    attempts       INTEGER NOT NULL DEFAULT 0,
    commands       TEXT    NOT NULL DEFAULT '[]', -- JSON array of argv arrays
    affected       TEXT    NOT NULL DEFAULT '[]', -- JSON array of names changed (or that would be)
    started_ms     INTEGER,
    finished_ms    INTEGER
);
CREATE INDEX actions_state ON actions (state, priority DESC, id);
CREATE INDEX actions_started ON actions (started_ms);

-- Every transition of every action, append-only: the audit trail.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id  INTEGER NOT NULL REFERENCES actions(id),
    at_ms      INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    actor      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_action ON events (action_id, id);

-- What hpcmon changed, target by target: written as `planned` before the command runs,
-- `applied` after; a revert writes `reverting` before and `reverted` after.
CREATE TABLE changes (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    kind              TEXT    NOT NULL,        -- the changing action (slurm.partition_down, ...)
    target            TEXT    NOT NULL,
    action_id         INTEGER NOT NULL REFERENCES actions(id),
    status            TEXT    NOT NULL,        -- planned | applied | reverting | reverted | abandoned | failed
    prior             TEXT    NOT NULL,
    at_ms             INTEGER NOT NULL,
    revert_action_id  INTEGER,
    ended_ms          INTEGER
);
CREATE INDEX changes_live ON changes (kind, target, status);
CREATE INDEX changes_action ON changes (action_id);

-- Apply actions that hold a live change: it is reverted only when the last holder resolves.
CREATE TABLE holders (
    kind       TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    action_id  INTEGER NOT NULL,
    PRIMARY KEY (kind, target, action_id)
);

-- The hold-off clock: when hpcmon last changed a target, per group (queue, drain, power).
CREATE TABLE last_change (
    grp        TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    at_ms      INTEGER NOT NULL,
    action_id  INTEGER NOT NULL,
    PRIMARY KEY (grp, target)
);

-- Source alerts of rules that need several to agree.
CREATE TABLE sources (
    rule            TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL,
    starts_ms       INTEGER NOT NULL,
    distinct_value  TEXT    NOT NULL,
    firing          INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    PRIMARY KEY (rule, fingerprint, starts_ms)
);

-- Switches that must survive a restart (the kill switch `paused`).
CREATE TABLE settings (
    key         TEXT    PRIMARY KEY,
    value       TEXT    NOT NULL,
    updated_ms  INTEGER NOT NULL,
    actor       TEXT    NOT NULL DEFAULT ''
);
