-- The gateways sharing this database, each one's last sign of life: how ops on any node see
-- the others (stats, where to send a control for a call), and how a node that died (kill -9,
-- power) is noticed, so its calls are closed as interrupted by the ones still running.
CREATE TABLE IF NOT EXISTS nodes (
    node         TEXT PRIMARY KEY,
    ops_url      TEXT NOT NULL DEFAULT '',
    started_ms   BIGINT NOT NULL,
    seen_ms      BIGINT NOT NULL,
    draining     BIGINT NOT NULL DEFAULT 0,
    active_calls BIGINT NOT NULL DEFAULT 0
);
