-- True while an entry's vectors may not match its catalogue row: UpsertEntries
-- commits the catalogue rows of a batch in one transaction, then writes the
-- vectors (Pinecone cannot join a PostgreSQL transaction), then clears the flag.
-- A write that failed in between leaves the flag set, so the caller's retry of
-- the same batch writes those vectors again even though the catalogue already
-- holds the new text.
ALTER TABLE knowledge_entries ADD COLUMN vectors_pending boolean NOT NULL DEFAULT false;
