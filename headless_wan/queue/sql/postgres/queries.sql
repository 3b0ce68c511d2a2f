-- Named statements for the PostgreSQL queue, loaded once by queue/sql_files.py.
-- Every time comes from the client's clock as a parameter (never now()), so leases behave the
-- same as on SQLite and tests can drive them with a fake clock.

-- name: create_schema
CREATE SCHEMA IF NOT EXISTS {schema};

-- name: migration_lock
-- One migrator at a time across the whole database (workers started together all run migrate).
SELECT pg_advisory_xact_lock(hashtext('headless_wan.migrate'));

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS hw_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: migrations_table_exists
SELECT to_regclass('hw_schema_migrations') IS NOT NULL AS present;

-- name: applied_migrations
SELECT version FROM hw_schema_migrations ORDER BY version;

-- name: record_migration
INSERT INTO hw_schema_migrations (version, name) VALUES (%(version)s, %(name)s);

-- name: current_schema
SELECT current_schema() AS name;

-- name: insert
INSERT INTO tasks (id, task_type, params, dependant_on, project_id, parent_id, created_at, updated_at)
VALUES (%(id)s, %(task_type)s, %(params)s, %(dependant_on)s::uuid[], %(project_id)s, %(parent_id)s::uuid,
        %(now)s, %(now)s)
ON CONFLICT (id) DO NOTHING;

-- name: claim
-- SKIP LOCKED: concurrent claimers pass over each other's candidate rows instead of queueing on them.
WITH next AS (
    SELECT t.id FROM tasks AS t
    WHERE t.status = 'Queued'
      AND (%(types)s::text[] IS NULL OR t.task_type = ANY (%(types)s::text[]))
      AND NOT EXISTS (
          SELECT 1 FROM unnest(t.dependant_on) AS d (dep_id)
          LEFT JOIN tasks AS dep ON dep.id = d.dep_id
          WHERE dep.status IS DISTINCT FROM 'Complete')
    ORDER BY t.created_at, t.seq
    LIMIT 1
    FOR UPDATE OF t SKIP LOCKED)
UPDATE tasks AS t
SET status = 'In Progress', worker_id = %(worker_id)s, claim_token = %(token)s, lease_expires_at = %(lease)s,
    updated_at = %(now)s, generation_started_at = %(now)s
FROM next
WHERE t.id = next.id
RETURNING t.*;

-- name: expired
-- Rows another sweeper (or a heartbeat) is touching right now are skipped, never swept twice.
SELECT * FROM tasks
WHERE status = 'In Progress' AND lease_expires_at < %(now)s
ORDER BY lease_expires_at
LIMIT 100
FOR UPDATE SKIP LOCKED;

-- name: heartbeat
UPDATE tasks SET lease_expires_at = %(lease)s
WHERE id = %(id)s AND claim_token = %(token)s AND status = 'In Progress'
RETURNING status;

-- name: mark_started
UPDATE tasks SET generation_started_at = %(now)s, updated_at = %(now)s
WHERE id = %(id)s AND claim_token = %(token)s AND status = 'In Progress';

-- name: finish_claimed
UPDATE tasks
SET status = %(status)s::task_status, output_location = COALESCE(%(output_location)s::text, output_location),
    error_message = COALESCE(%(error_message)s::text, error_message),
    generation_processed_at = %(processed_at)s::timestamptz, claim_token = NULL, lease_expires_at = NULL,
    updated_at = %(now)s
WHERE id = %(id)s AND claim_token = %(token)s AND status = 'In Progress'
RETURNING *;

-- name: wait_for_children
UPDATE tasks
SET output_location = %(message)s, worker_id = NULL, claim_token = NULL, lease_expires_at = NULL,
    updated_at = %(now)s
WHERE id = %(id)s AND claim_token = %(token)s AND status = 'In Progress'
RETURNING *;

-- name: requeue
UPDATE tasks
SET status = %(status)s::task_status, attempts = %(attempts)s, error_message = %(error_message)s,
    worker_id = NULL, generation_started_at = NULL, claim_token = NULL, lease_expires_at = NULL,
    updated_at = %(now)s
WHERE id = %(id)s AND status = 'In Progress' AND claim_token IS NOT DISTINCT FROM %(token)s::text;

-- name: settle
UPDATE tasks
SET status = %(status)s::task_status, output_location = COALESCE(%(output_location)s::text, output_location),
    error_message = COALESCE(%(error_message)s::text, error_message),
    generation_processed_at = %(processed_at)s::timestamptz, claim_token = NULL, lease_expires_at = NULL,
    updated_at = %(now)s
WHERE id = %(id)s AND status NOT IN ('Complete', 'Failed', 'Cancelled');

-- name: cancel_queued_children
UPDATE tasks SET status = 'Cancelled', error_message = %(message)s, updated_at = %(now)s
WHERE parent_id = %(parent_id)s AND status = 'Queued';

-- name: get
SELECT * FROM tasks WHERE id = %(id)s;

-- name: get_for_update
-- Settling a parent locks it first: two children finishing at once are serialised here, and the
-- second one's read of the children (a new statement) sees the first one's commit.
SELECT * FROM tasks WHERE id = %(id)s FOR UPDATE;

-- name: parent_of
SELECT parent_id FROM tasks WHERE id = %(id)s;

-- name: children
SELECT * FROM tasks WHERE parent_id = %(parent_id)s ORDER BY created_at, seq;

-- name: list_all
SELECT * FROM tasks ORDER BY created_at DESC, seq DESC LIMIT %(limit)s;

-- name: list_by_status
SELECT * FROM tasks WHERE status = %(status)s::task_status ORDER BY created_at DESC, seq DESC LIMIT %(limit)s;

-- name: completed_segments
SELECT * FROM tasks
WHERE task_type = %(task_type)s AND status = 'Complete' AND params ->> 'orchestrator_run_id' = %(run_id)s
ORDER BY created_at, seq
LIMIT 1000;

-- name: held_by
SELECT * FROM tasks
WHERE worker_id = %(worker_id)s AND status = 'In Progress' AND claim_token IS NOT NULL
ORDER BY created_at, seq
FOR UPDATE;

-- name: worker_alive
INSERT INTO workers (id, status, last_heartbeat, current_task, metadata)
VALUES (%(id)s, %(status)s, %(now)s, %(current_task)s::uuid, %(metadata)s)
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status, last_heartbeat = excluded.last_heartbeat,
    current_task = excluded.current_task, metadata = excluded.metadata;

-- name: set_model
INSERT INTO workers (id, status, last_heartbeat, current_model)
VALUES (%(id)s, 'active', %(now)s, %(model)s)
ON CONFLICT (id) DO UPDATE SET current_model = excluded.current_model, last_heartbeat = excluded.last_heartbeat;
