-- The mesh's role and one database per service, owned by it. Safe to run again: what exists is
-- left as it is. Run by PostgreSQL's own entrypoint in compose, by deploy/local/postgres.sh for
-- `make run` and the tests, and once by the administrator of a managed PostgreSQL
-- (psql -v ON_ERROR_STOP=1 -f).
-- The role needs CREATEROLE: oversight makes its read-only role itself. Its password is set apart
-- (compose makes the role from POSTGRES_USER / POSTGRES_PASSWORD; elsewhere \password mesh).
SELECT 'CREATE ROLE mesh LOGIN CREATEROLE' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mesh') \gexec
-- A managed PostgreSQL's administrator is no superuser: it may give a database to mesh only as a
-- member of it that may SET ROLE to it. Asked as USAGE: since PostgreSQL 16 the administrator that
-- made the role is granted it back without SET or INHERIT, which MEMBER counts, and CREATE DATABASE
-- ... OWNER mesh was then refused ("must be able to SET ROLE").
SELECT format('GRANT mesh TO %I', current_user) WHERE NOT pg_has_role(current_user, 'mesh', 'USAGE') \gexec
SELECT format('CREATE DATABASE %I OWNER mesh', name)
  FROM unnest(ARRAY['router', 'notifier', 'oversight', 'intake']) AS name
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = name) \gexec
