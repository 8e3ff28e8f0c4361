-- hpcmon alert bridge on MySQL/MariaDB: the alert log's own tables, then alertsnitch's
-- tables (read by OpenSCOW's alarm-log page through Grafana). utf8mb4 everywhere (every
-- Unicode value storable); the bridge's own tables compare exactly (binary collation: no case
-- or accent folding), alertsnitch's keep the charset's default collation as alertsnitch did.

-- Alert episodes: one row per (fingerprint, startsAt). Times are milliseconds since the epoch.
CREATE TABLE episodes (
    id            BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    fingerprint   VARCHAR(255) NOT NULL,
    starts_at     BIGINT NOT NULL,
    ends_at       BIGINT NULL,
    status        VARCHAR(16) NOT NULL,
    alertname     VARCHAR(255) NOT NULL,
    severity      VARCHAR(255) NOT NULL,
    instance      VARCHAR(255) NOT NULL,
    labels        LONGTEXT NOT NULL,
    annotations   LONGTEXT NOT NULL,
    generator_url LONGTEXT NOT NULL,
    receiver      LONGTEXT NOT NULL,
    group_key     LONGTEXT NOT NULL,
    first_seen    BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    notifications BIGINT NOT NULL,
    changed_at    BIGINT NOT NULL,
    resolved_seen BIGINT NULL,
    CONSTRAINT episodes_status CHECK (status IN ('firing', 'resolved')),
    UNIQUE KEY episodes_key (fingerprint, starts_at),
    KEY episodes_starts_at (starts_at),
    KEY episodes_ends_at (ends_at),
    KEY episodes_last_seen (last_seen),
    KEY episodes_status (status, starts_at),
    KEY episodes_alertname (alertname, starts_at),
    KEY episodes_severity (severity, starts_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE label_pairs (
    id      BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name    VARCHAR(1024) NOT NULL,
    value   LONGBLOB NOT NULL,
    vprefix VARBINARY(128) NOT NULL,
    hash    BINARY(32) NOT NULL,
    UNIQUE KEY label_pairs_hash (hash),
    KEY label_pairs_name_prefix (name(191), vprefix)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE episode_labels (
    pair_id    BIGINT NOT NULL,
    episode_id BIGINT NOT NULL,
    PRIMARY KEY (pair_id, episode_id),
    KEY episode_labels_episode (episode_id),
    CONSTRAINT episode_labels_pair_fk FOREIGN KEY (pair_id) REFERENCES label_pairs (id),
    CONSTRAINT episode_labels_episode_fk FOREIGN KEY (episode_id) REFERENCES episodes (id) ON DELETE CASCADE
) ENGINE=InnoDB;

CREATE TABLE notifications (
    id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    episode_id      BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    status          VARCHAR(16) NOT NULL,
    ends_at         BIGINT NULL,
    annotations     LONGTEXT NOT NULL,
    receiver        LONGTEXT NOT NULL,
    group_key       LONGTEXT NOT NULL,
    reason          VARCHAR(255) NOT NULL DEFAULT '',
    compat_alert_id INT NULL,           -- the alertsnitch Alert row written for this change
    KEY notifications_episode (episode_id),
    CONSTRAINT notifications_episode_fk FOREIGN KEY (episode_id) REFERENCES episodes (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE writer_lock (
    id          INT NOT NULL PRIMARY KEY,
    pairs_epoch BIGINT NOT NULL
) ENGINE=InnoDB;
INSERT INTO writer_lock (id, pairs_epoch) VALUES (1, 0);

CREATE TABLE health (
    id         INT NOT NULL PRIMARY KEY,
    checked_at BIGINT NOT NULL
) ENGINE=InnoDB;
INSERT INTO health (id, checked_at) VALUES (1, 0);

-- alertsnitch's schema, model 0.1.0 (db.d/mysql/0.0.1-bootstrap.sql + 0.1.0-fingerprint.sql):
-- same tables, columns and types. IF NOT EXISTS: an existing alertsnitch database is adopted.
CREATE TABLE IF NOT EXISTS `Model` (
    `ID` enum('1') NOT NULL,
    `version` VARCHAR(20) NOT NULL,
    PRIMARY KEY (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT IGNORE INTO `Model` (`ID`, `version`) VALUES ('1', '0.1.0');

CREATE TABLE IF NOT EXISTS `AlertGroup` (
    `ID` INT NOT NULL AUTO_INCREMENT,
    `time` TIMESTAMP NOT NULL,
    `receiver` VARCHAR(100) NOT NULL,
    `status` VARCHAR(50) NOT NULL,
    `externalURL` TEXT NOT NULL,
    `groupKey` VARCHAR(255) NOT NULL,
    KEY `idx_time` (`time`) USING BTREE,
    KEY `idx_status_ts` (`status`, `time`) USING BTREE,
    PRIMARY KEY (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `GroupLabel` (
    `ID` INT NOT NULL AUTO_INCREMENT,
    `AlertGroupID` INT NOT NULL,
    `GroupLabel` VARCHAR(100) NOT NULL,
    `Value` VARCHAR(1000) NOT NULL,
    FOREIGN KEY (AlertGroupID) REFERENCES AlertGroup (ID) ON DELETE CASCADE,
    PRIMARY KEY (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `CommonLabel` (
    `ID` INT NOT NULL AUTO_INCREMENT,
    `AlertGroupID` INT NOT NULL,
    `Label` VARCHAR(100) NOT NULL,
    `Value` VARCHAR(1000) NOT NULL,
    FOREIGN KEY (AlertGroupID) REFERENCES AlertGroup (ID) ON DELETE CASCADE,
    PRIMARY KEY (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `CommonAnnotation` (
    `ID` INT NOT NULL AUTO_INCREMENT,
    `AlertGroupID` INT NOT NULL,
    `Annotation` VARCHAR(100) NOT NULL,
    `Value` VARCHAR(1000) NOT NULL,
    FOREIGN KEY (AlertGroupID) REFERENCES AlertGroup (ID) ON DELETE CASCADE,
    PRIMARY KEY (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `Alert` (
    `ID` INT NOT NULL AUTO_INCREMENT,
    `alertGroupID` INT NOT NULL,
    `status` VARCHAR(50) NOT NULL,
    `startsAt` DATETIME NOT NULL,
    `endsAt` DATETIME DEFAULT NULL,
    `generatorURL` TEXT NOT NULL,
    `fingerprint` TEXT NOT NULL,
    FOREIGN KEY (alertGroupID) REFERENCES AlertGroup (ID) ON DELETE CASCADE,
    PRIMARY KEY (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `AlertLabel` (
    `ID` INT NOT NULL AUTO_INCREMENT,
    `AlertID` INT NOT NULL,
    `Label` VARCHAR(100) NOT NULL,
    `Value` VARCHAR(1000) NOT NULL,
    FOREIGN KEY (AlertID) REFERENCES Alert (ID) ON DELETE CASCADE,
    PRIMARY KEY (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `AlertAnnotation` (
    `ID` INT NOT NULL AUTO_INCREMENT,
    `AlertID` INT NOT NULL,
    `Annotation` VARCHAR(100) NOT NULL,
    `Value` VARCHAR(1000) NOT NULL,
    FOREIGN KEY (AlertID) REFERENCES Alert (ID) ON DELETE CASCADE,
    PRIMARY KEY (`ID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
