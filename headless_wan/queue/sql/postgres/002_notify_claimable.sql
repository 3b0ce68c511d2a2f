-- Wake idle workers (LISTEN headless_wan_tasks) whenever a task may have become claimable:
-- inserted or requeued (status Queued), or completed (its dependants may now run).
-- A trigger rather than explicit NOTIFYs in the client, so rows written by any other tool wake
-- workers too. The payload is the schema, so fleets sharing a database in different schemas
-- ignore each other. PostgreSQL folds identical notifications of one transaction into one.

CREATE FUNCTION hw_notify_claimable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('headless_wan_tasks', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_notify_claimable
AFTER INSERT OR UPDATE OF status ON tasks
FOR EACH ROW WHEN (NEW.status IN ('Queued', 'Complete'))
EXECUTE FUNCTION hw_notify_claimable();
