-- The caller's id in the contact center's CRM, from a SIP header (`[sip] customer_id_header`):
-- a caller known by it is the same caller whatever number they call from. '' when none.
ALTER TABLE calls ADD COLUMN customer_id TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS calls_by_customer ON calls(customer_id, started_ms);
