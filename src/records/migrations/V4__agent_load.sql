-- Each node's bridged calls per SIP agent (JSON: {"sip:agent@host": 1}), so least-busy
-- routing on any node counts the calls the other nodes gave each agent.
ALTER TABLE nodes ADD COLUMN agent_load TEXT NOT NULL DEFAULT '{}';
