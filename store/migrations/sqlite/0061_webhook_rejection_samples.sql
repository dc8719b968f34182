-- Refused webhook deliveries are sampled: one row stands for `refusals`
-- refusals of the same reason (the sampled one and those skipped since the
-- last row), so a flood of forged deliveries costs a row a second at most.
ALTER TABLE webhook_rejections ADD COLUMN refusals INTEGER NOT NULL DEFAULT 1;
