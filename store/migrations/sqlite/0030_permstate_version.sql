-- A counter bumped in the transaction of every tombstone write or lift. A
-- session read returns it with the row, so a replica whose cached tombstones
-- are older than the database (another replica's change, its notification
-- still on the way) re-reads them before the request is served.
CREATE TABLE perm_state (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    tombstone_version BIGINT NOT NULL
);
INSERT INTO perm_state (id, tombstone_version) VALUES (1, 0);
