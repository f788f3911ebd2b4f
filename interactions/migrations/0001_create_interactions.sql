-- The interactions table: one row per exchange between a customer and the bot.
-- Column names of the original design are kept: interaction_id, user_query,
-- bot_response, feedback, timestamp, processed_for_training.
CREATE TABLE interactions (
    interaction_id          uuid        PRIMARY KEY,
    conversation_id         text        NOT NULL DEFAULT '',
    user_query              text        NOT NULL,
    bot_response            text        NOT NULL,
    -- [{"entry_id": ..., "title": ..., "score": ...}], best first.
    sources                 jsonb       NOT NULL DEFAULT '[]',
    model                   text        NOT NULL DEFAULT '',
    input_tokens            integer     NOT NULL DEFAULT 0,
    output_tokens           integer     NOT NULL DEFAULT 0,
    retrieval_ms            integer     NOT NULL DEFAULT 0,
    time_to_first_token_ms  integer     NOT NULL DEFAULT 0,
    total_ms                integer     NOT NULL DEFAULT 0,
    trace_id                text        NOT NULL DEFAULT '',
    "timestamp"             timestamptz NOT NULL DEFAULT now(),
    -- +1 liked, -1 disliked, 0 not rated.
    feedback                smallint    NOT NULL DEFAULT 0 CHECK (feedback IN (-1, 0, 1)),
    feedback_reason         text,
    feedback_comment        text        NOT NULL DEFAULT '',
    feedback_time           timestamptz,
    processed_for_training  boolean     NOT NULL DEFAULT false,
    training_outcome        text        CHECK (training_outcome IN
                                ('covered', 'fixed', 'proposed', 'rejected', 'rolled_back', 'failed')),
    knowledge_entry_id      text        NOT NULL DEFAULT '',
    training_run_id         text        NOT NULL DEFAULT '',
    processed_time          timestamptz
);

-- The trainer's queue: disliked and unprocessed, oldest first. Partial, so it
-- stays as small as the backlog however many millions of rows the table holds.
-- Queries must spell the predicate with constants to match it.
CREATE INDEX interactions_training_queue
    ON interactions ("timestamp", interaction_id)
    WHERE feedback = -1 AND processed_for_training = false;

-- Listing everything (or by rating) in time order.
CREATE INDEX interactions_by_time ON interactions ("timestamp", interaction_id);

-- The turns of one conversation.
CREATE INDEX interactions_by_conversation
    ON interactions (conversation_id, "timestamp", interaction_id)
    WHERE conversation_id <> '';
