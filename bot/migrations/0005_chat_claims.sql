-- `chat_claims`: a request id that a bot process is answering right now. A
-- retry (or a concurrent call) with the same request id waits for the claim to
-- go and then replays the logged answer, so a request id is answered once and
-- every answer a client sees is the logged one. A claim lives only while its
-- answer is generated; a claim older than the bot's lease (a crashed process)
-- may be taken over.
CREATE TABLE chat_claims (
    request_id  uuid        PRIMARY KEY,
    claimed_at  timestamptz NOT NULL DEFAULT now()
);
