-- When an item's refresh_claims call was sent (unix ms; the earliest call
-- start of the batch that completed it, so never later than the real send):
-- a refresh needed because of a change Kinde made at T is already met by one
-- sent after T. 0 for items completed without a call of their own (covered by
-- another fan-out) and for items completed before this column existed.
ALTER TABLE fanout_items ADD COLUMN sent_at BIGINT NOT NULL DEFAULT 0;
-- Which fan-outs already refresh (or refreshed) a set of users: one indexed
-- read per planned fan-out.
CREATE INDEX fanout_items_user ON fanout_items (user_id, status, sent_at);
