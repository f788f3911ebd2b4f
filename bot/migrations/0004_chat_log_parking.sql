-- The chat outbox parks what interactions refuses for good.
--
-- `failed_at`: an exchange that interactions refused for good (ALREADY_EXISTS,
-- INVALID_ARGUMENT, ...: retrying cannot change the answer) is parked here with
-- the refusal in `last_error`, so it no longer holds up the exchanges after it.
-- Parked rows are pruned after the retention period like delivered ones.
ALTER TABLE chat_log ADD COLUMN failed_at timestamptz;
