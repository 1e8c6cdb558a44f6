-- The shared call records database for a cluster of frontline gateways. Run once as the
-- PostgreSQL superuser: psql -v password="'...'" -f deploy/postgresql.sql
-- Then set on every node: [records] url = "postgres://frontline:PASSWORD@DBHOST/frontline".
-- The gateways create and migrate their tables themselves at start (refinery migrations,
-- src/records/migrations/), so this only makes the role and the database.
CREATE ROLE frontline LOGIN PASSWORD :password;
CREATE DATABASE frontline OWNER frontline ENCODING 'UTF8';
