-- Jobwire on SQLite, schema version 3: aborts told to every process at once.

-- Moves each time an active job of the queue turns aborting. A process whose workers (or
-- Work streams) hear of aborts polls it with the other counters, then reads which jobs
-- are aborting: their workers cancel them now, not at their next renew.
ALTER TABLE jobwire_queues ADD COLUMN abort_version INTEGER NOT NULL DEFAULT 0;
