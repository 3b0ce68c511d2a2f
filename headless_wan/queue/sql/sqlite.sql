-- Named statements for the embedded SQLite queue, loaded once by queue/sql_files.py.
-- Times are fixed-width UTC text (semantics.TIME_FORMAT), so they compare and sort as strings.

-- name: schema
CREATE TABLE IF NOT EXISTS tasks (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,  -- tie-breaker for equal created_at
    id                      TEXT NOT NULL UNIQUE,
    task_type               TEXT NOT NULL,
    params                  TEXT NOT NULL,                      -- JSON object
    status                  TEXT NOT NULL DEFAULT 'Queued'
        CHECK (status IN ('Queued', 'In Progress', 'Complete', 'Failed', 'Cancelled')),
    dependant_on            TEXT,                               -- JSON array of task ids, or NULL
    project_id              TEXT,
    worker_id               TEXT,
    output_location         TEXT,
    error_message           TEXT,
    attempts                INTEGER NOT NULL DEFAULT 0,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    generation_started_at   TEXT,
    generation_processed_at TEXT,
    parent_id               TEXT,                               -- the orchestrator that spawned it
    claim_token             TEXT,                               -- fences writes of the current holder
    lease_expires_at        TEXT                                -- NULL unless a worker holds the task
);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status, created_at, seq);
CREATE INDEX IF NOT EXISTS tasks_by_parent ON tasks (parent_id);
CREATE INDEX IF NOT EXISTS tasks_by_lease ON tasks (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS workers (
    id             TEXT PRIMARY KEY,
    status         TEXT NOT NULL,
    last_heartbeat TEXT NOT NULL,
    current_model  TEXT,
    current_task   TEXT,
    metadata       TEXT NOT NULL DEFAULT '{}'                   -- JSON: vram_total_mb, vram_used_mb
);

-- name: insert
INSERT INTO tasks (id, task_type, params, dependant_on, project_id, parent_id, created_at, updated_at)
VALUES (:id, :task_type, :params, :dependant_on, :project_id, :parent_id, :now, :now)
ON CONFLICT (id) DO NOTHING;

-- name: claim
UPDATE tasks
SET status = 'In Progress', worker_id = :worker_id, claim_token = :token, lease_expires_at = :lease,
    updated_at = :now, generation_started_at = :now
WHERE id = (
    SELECT t.id FROM tasks AS t
    WHERE t.status = 'Queued'
      AND (:types IS NULL OR t.task_type IN (SELECT value FROM json_each(:types)))
      AND NOT EXISTS (
          SELECT 1 FROM json_each(COALESCE(t.dependant_on, '[]')) AS d
          LEFT JOIN tasks AS dep ON dep.id = d.value
          WHERE dep.status IS NULL OR dep.status <> 'Complete')
    ORDER BY t.created_at, t.seq
    LIMIT 1)
RETURNING *;

-- name: expired
SELECT * FROM tasks
WHERE status = 'In Progress' AND lease_expires_at IS NOT NULL AND lease_expires_at < :now;

-- name: heartbeat
UPDATE tasks SET lease_expires_at = :lease
WHERE id = :id AND claim_token = :token AND status = 'In Progress'
RETURNING status;

-- name: mark_started
UPDATE tasks SET generation_started_at = :now, updated_at = :now
WHERE id = :id AND claim_token = :token AND status = 'In Progress';

-- name: finish_claimed
UPDATE tasks
SET status = :status, output_location = COALESCE(:output_location, output_location),
    error_message = COALESCE(:error_message, error_message),
    generation_processed_at = :processed_at, claim_token = NULL, lease_expires_at = NULL, updated_at = :now
WHERE id = :id AND claim_token = :token AND status = 'In Progress'
RETURNING *;

-- name: wait_for_children
UPDATE tasks
SET output_location = :message, worker_id = NULL, claim_token = NULL, lease_expires_at = NULL, updated_at = :now
WHERE id = :id AND claim_token = :token AND status = 'In Progress'
RETURNING *;

-- name: requeue
UPDATE tasks
SET status = :status, attempts = :attempts, error_message = :error_message, worker_id = NULL,
    generation_started_at = NULL, claim_token = NULL, lease_expires_at = NULL, updated_at = :now
WHERE id = :id AND status = 'In Progress' AND claim_token IS :token;

-- name: settle
UPDATE tasks
SET status = :status, output_location = COALESCE(:output_location, output_location),
    error_message = COALESCE(:error_message, error_message),
    generation_processed_at = :processed_at, claim_token = NULL, lease_expires_at = NULL, updated_at = :now
WHERE id = :id AND status NOT IN ('Complete', 'Failed', 'Cancelled');

-- name: cancel_queued_children
UPDATE tasks SET status = 'Cancelled', error_message = :message, updated_at = :now
WHERE parent_id = :parent_id AND status = 'Queued';

-- name: get
SELECT * FROM tasks WHERE id = :id;

-- name: children
SELECT * FROM tasks WHERE parent_id = :parent_id ORDER BY created_at, seq;

-- name: list_all
SELECT * FROM tasks ORDER BY created_at DESC, seq DESC LIMIT :limit;

-- name: list_by_status
SELECT * FROM tasks WHERE status = :status ORDER BY created_at DESC, seq DESC LIMIT :limit;

-- name: completed_segments
SELECT * FROM tasks
WHERE task_type = :task_type AND status = 'Complete' AND json_extract(params, '$.orchestrator_run_id') = :run_id
ORDER BY created_at, seq
LIMIT 1000;

-- name: worker_alive
INSERT INTO workers (id, status, last_heartbeat, current_task, metadata)
VALUES (:id, :status, :now, :current_task, :metadata)
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status, last_heartbeat = excluded.last_heartbeat,
    current_task = excluded.current_task, metadata = excluded.metadata;

-- name: set_model
INSERT INTO workers (id, status, last_heartbeat, current_model)
VALUES (:id, 'active', :now, :model)
ON CONFLICT (id) DO UPDATE SET current_model = excluded.current_model, last_heartbeat = excluded.last_heartbeat;

-- name: held_by
SELECT * FROM tasks WHERE worker_id = :worker_id AND status = 'In Progress' AND claim_token IS NOT NULL;

-- name: get_for_update
-- SQLite's write transaction (BEGIN IMMEDIATE) already serialises writers; no row lock needed.
SELECT * FROM tasks WHERE id = :id;

-- name: parent_of
SELECT parent_id FROM tasks WHERE id = :id;
