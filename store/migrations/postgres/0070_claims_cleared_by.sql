-- Which fan-out made the user's latest refresh_claims (cleared_at); '' when
-- it was "Refresh session". A refresh needed because of a change Kinde made
-- at T is met by one that started after T: RefreshCovers reads it here, one
-- row per user (an index of every fan-out item by user would slow each
-- fan-out's inserts, its keys landing all over the index as the table grows).
ALTER TABLE user_claims ADD COLUMN cleared_by TEXT NOT NULL DEFAULT '';
