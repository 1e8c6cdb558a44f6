-- Many gateways can share one database: each call names the node that took it (a node marks
-- only its own calls interrupted when it starts again). The timeline keeps the order its
-- states came in without SQLite's rowid, which PostgreSQL does not have.
ALTER TABLE calls ADD COLUMN node TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS calls_by_node ON calls(node);
ALTER TABLE timeline ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
