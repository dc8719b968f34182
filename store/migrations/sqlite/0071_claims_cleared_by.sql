-- Which fan-out made the user's latest refresh_claims (cleared_at); '' when
-- it was "Refresh session". A refresh needed because of a change Kinde made
-- at T is met by one that started after T, so RefreshCovers reads it here,
-- one row per user, instead of through an index of every fan-out item by
-- user, which made each fan-out's inserts slower (its keys land all over the
-- index as the table grows).
ALTER TABLE user_claims ADD COLUMN cleared_by TEXT NOT NULL DEFAULT '';
DROP INDEX fanout_items_user;
