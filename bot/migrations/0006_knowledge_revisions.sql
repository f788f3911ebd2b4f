-- Knowledge revisions: every change to an entry is kept, with who made it, why
-- and for which trainer fix or run, so that an entry's history can be listed
-- and an earlier state restored (KnowledgeService.ListRevisions,
-- RestoreRevision). The bot writes a revision in the same transaction as the
-- change it records (bot/catalog.py), and only for a change: a write that
-- leaves an entry as it was makes none.
--
-- `revision` numbers an entry's changes from 1. The history outlives the
-- entry (a deletion is a revision whose `state` is NULL), so there is no
-- foreign key, and an entry written again after a deletion goes on counting.
ALTER TABLE knowledge_entries ADD COLUMN revision bigint NOT NULL DEFAULT 1;

CREATE TABLE knowledge_revisions (
    entry_id          text        NOT NULL,
    revision          bigint      NOT NULL CHECK (revision > 0),
    action            text        NOT NULL CHECK (action IN ('create', 'update', 'delete', 'restore')),
    -- The entry after the change (kind, title, content, questions, source,
    -- provenance, status, metadata); NULL for a deletion.
    state             jsonb       CHECK ((state IS NULL) = (action = 'delete')),
    actor             text        NOT NULL,  -- the caller's identity: admin, trainer; bot; migration
    author            text        NOT NULL DEFAULT '',  -- for whom (the caller's note), e.g. a reviewer
    reason            text        NOT NULL DEFAULT '',
    fix_id            text        NOT NULL DEFAULT '',
    training_run_id   text        NOT NULL DEFAULT '',
    restored_revision bigint      NOT NULL DEFAULT 0,  -- a restore: the revision written back
    create_time       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entry_id, revision)
);

-- What exists now is each entry's first revision: its history before this
-- migration was not kept.
INSERT INTO knowledge_revisions (entry_id, revision, action, state, actor, reason, create_time)
SELECT entry_id, 1, 'create',
       jsonb_build_object('kind', kind, 'title', title, 'content', content, 'questions', to_jsonb(questions),
                          'source', source, 'provenance', provenance, 'status', status, 'metadata', metadata),
       'migration', 'the entry as it was when revisions began to be kept', update_time
  FROM knowledge_entries;
