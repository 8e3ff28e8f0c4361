-- Read-only MariaDB/MySQL account for Grafana's `AlarmDB-MySQL` datasource (OpenSCOW's alarm
-- log). OpenSCOW pastes its status filter into the SQL it sends unescaped, so this account must
-- not be able to write anything: SELECT on alertsnitch's tables of the bridge's database only.
--
-- Create the account first, with a password of your own (never in this file):
--   CREATE USER 'openscow'@'%' IDENTIFIED BY '...';
-- then run this file (replace `alerts` with the bridge's database if it differs):
--   mariadb < alert-bridge/openscow/alarmdb-readonly.sql
GRANT SELECT ON `alerts`.`Model` TO 'openscow'@'%';
GRANT SELECT ON `alerts`.`AlertGroup` TO 'openscow'@'%';
GRANT SELECT ON `alerts`.`GroupLabel` TO 'openscow'@'%';
GRANT SELECT ON `alerts`.`CommonLabel` TO 'openscow'@'%';
GRANT SELECT ON `alerts`.`CommonAnnotation` TO 'openscow'@'%';
GRANT SELECT ON `alerts`.`Alert` TO 'openscow'@'%';
GRANT SELECT ON `alerts`.`AlertLabel` TO 'openscow'@'%';
GRANT SELECT ON `alerts`.`AlertAnnotation` TO 'openscow'@'%';
