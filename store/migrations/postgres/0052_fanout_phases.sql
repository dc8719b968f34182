-- A deletion's fan-out goes through phases before its refresh_claims jobs
-- run (store/fanouts.go, FanoutPhase*): waiting for the undo window, deleting
-- at Kinde (retrying while Kinde refuses), then refreshing users; or undone.
-- '' is a fan-out with no Kinde call of its own (refreshing from the start).
-- kinde_due_at is when the Kinde call is due; kinde_error the last refusal;
-- kinde_done_at when Kinde made the change. Times are unix milliseconds.
ALTER TABLE fanouts ADD COLUMN phase TEXT NOT NULL DEFAULT '';
ALTER TABLE fanouts ADD COLUMN kinde_due_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE fanouts ADD COLUMN kinde_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE fanouts ADD COLUMN kinde_error TEXT NOT NULL DEFAULT '';
ALTER TABLE fanouts ADD COLUMN kinde_done_at BIGINT NOT NULL DEFAULT 0;
