-- The bot's own log of the exchanges it answered: the outbox that delivers
-- each one to the interactions service (the sole owner of the interactions
-- table). A row is written before the answer is returned, so an answered
-- exchange is never lost while interactions is down; `delivered_at` is set once
-- InteractionsService.CreateInteraction (idempotent on the id) has accepted it.
-- Rows also serve idempotent chat retries and recent conversation history, and
-- delivered rows are pruned after the retention period.
CREATE TABLE chat_log (
    interaction_id   uuid        PRIMARY KEY,
    conversation_id  text        NOT NULL,
    query            text        NOT NULL,
    answer           text        NOT NULL,
    grounded         boolean     NOT NULL,
    -- The serialized CreateInteractionRequest to deliver, and the ChatResponse to replay.
    request          bytea       NOT NULL,
    response         bytea       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text        NOT NULL DEFAULT ''
);

CREATE INDEX chat_log_undelivered ON chat_log (created_at) WHERE delivered_at IS NULL;
CREATE INDEX chat_log_by_conversation ON chat_log (conversation_id, created_at);
