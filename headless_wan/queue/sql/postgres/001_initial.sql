-- Reigh's `tasks` row (reigh-contract.md §4.2) plus the fencing columns our own backends need.
-- Applied once by `python -m headless_wan migrate`, inside one transaction, into the schema
-- first on the connection's search_path.
--
-- Divergences from Reigh, on purpose: `project_id` is free text (standalone fleets name projects,
-- Reigh uses a uuid); `seq` breaks created_at ties so FIFO order is total.

CREATE TYPE task_status AS ENUM ('Queued', 'In Progress', 'Complete', 'Failed', 'Cancelled');

CREATE TABLE tasks (
    seq                     bigint GENERATED ALWAYS AS IDENTITY,
    id                      uuid PRIMARY KEY,
    task_type               text NOT NULL,
    params                  jsonb NOT NULL DEFAULT '{}'::jsonb,
    status                  task_status NOT NULL DEFAULT 'Queued',
    dependant_on            uuid[],                 -- NULL or the ids that must be Complete first
    project_id              text,
    worker_id               text,
    output_location         text,
    error_message           text,
    attempts                integer NOT NULL DEFAULT 0,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    generation_started_at   timestamptz,
    generation_processed_at timestamptz,
    parent_id               uuid,                   -- the orchestrator that spawned it
    claim_token             text,                   -- fences writes of the current holder
    lease_expires_at        timestamptz             -- NULL unless a worker holds the task
);

-- The claim walks this partial index in FIFO order and skips locked rows.
CREATE INDEX tasks_queued_fifo ON tasks (created_at, seq) WHERE status = 'Queued';
CREATE INDEX tasks_by_status ON tasks (status, created_at, seq);
CREATE INDEX tasks_by_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX tasks_by_lease ON tasks (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE INDEX tasks_by_worker ON tasks (worker_id) WHERE status = 'In Progress';
CREATE INDEX tasks_segments ON tasks ((params ->> 'orchestrator_run_id')) WHERE task_type = 'travel_segment';

CREATE TABLE workers (
    id             text PRIMARY KEY,
    status         text NOT NULL,
    last_heartbeat timestamptz NOT NULL,
    current_model  text,
    current_task   uuid,
    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb   -- vram_total_mb, vram_used_mb
);
