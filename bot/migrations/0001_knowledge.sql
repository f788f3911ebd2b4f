-- The bot's knowledge index. The bot alone owns these tables.
--
-- knowledge_entries is the catalogue: what an entry says, where it came from
-- and whether it answers customers. Its retrieval keys (a Q&A entry's question
-- phrasings; an article chunk's title and text) are embedded into a vector
-- store: with pgvector, the knowledge_vectors table below; with Pinecone, the
-- Pinecone index, and knowledge_vectors stays empty.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE knowledge_entries (
    entry_id     text        PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('article', 'qa')),
    title        text        NOT NULL DEFAULT '',
    content      text        NOT NULL,
    questions    text[]      NOT NULL DEFAULT '{}',
    source       text        NOT NULL,
    provenance   jsonb       NOT NULL DEFAULT '{}',
    status       text        NOT NULL CHECK (status IN ('published', 'proposed', 'archived')),
    metadata     jsonb       NOT NULL DEFAULT '{}',
    create_time  timestamptz NOT NULL DEFAULT now(),
    update_time  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX knowledge_entries_by_time ON knowledge_entries (create_time, entry_id);

-- One row per retrieval key. `space` names the embedding model: vectors of
-- different models (and dimensions) never mix, and each space gets its own
-- partial HNSW index, created by the bot when it first uses that space
-- (pgvector needs a fixed dimension per index). Status and source are copied
-- here so that filters apply inside the index scan.
CREATE TABLE knowledge_vectors (
    space      text    NOT NULL,
    entry_id   text    NOT NULL REFERENCES knowledge_entries (entry_id) ON DELETE CASCADE,
    key_no     integer NOT NULL,
    key_text   text    NOT NULL,
    status     text    NOT NULL,
    source     text    NOT NULL,
    embedding  vector  NOT NULL,
    PRIMARY KEY (space, entry_id, key_no)
);

CREATE INDEX knowledge_vectors_by_entry ON knowledge_vectors (entry_id);
