-- Where each agent's phone registered (`[sip.auth] agents`), one row per agent: the phone that
-- registered last, through whichever gateway, is the one rung, so a gateway rings an agent who
-- registered through another node behind the proxy, or before this gateway restarted. A phone
-- that unregisters keeps its row with expires_ms = registered_ms = when it left, so a gateway
-- still holding the older binding in memory sees it is gone.
CREATE TABLE IF NOT EXISTS registrations (
    agent         TEXT PRIMARY KEY,
    contact       TEXT NOT NULL,
    registered_ms BIGINT NOT NULL,
    expires_ms    BIGINT NOT NULL,
    node          TEXT NOT NULL
);
