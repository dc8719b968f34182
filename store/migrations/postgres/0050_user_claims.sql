-- Each user's claim cache at Kinde, as permsync knows it. Times are unix
-- milliseconds.
--
-- cleared_at is when the latest successful refresh_claims for the user
-- started: every token granted to them after that carries claims at least as
-- fresh. button_at is when "Refresh session" last called refresh_claims for
-- the user; a click within the configured interval refreshes tokens only, so
-- many tabs cannot spend the Management API budget.
CREATE TABLE user_claims (
    user_id    TEXT PRIMARY KEY,
    cleared_at BIGINT NOT NULL DEFAULT 0,
    button_at  BIGINT NOT NULL DEFAULT 0
);
