-- The trainer's own record of its runs and the fixes they wrote, for review and undo.
CREATE TABLE trainer_runs (
    run_id              uuid        PRIMARY KEY,
    state               text        NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'skipped_below_threshold')),
    trigger             text        NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    forced              boolean     NOT NULL DEFAULT false,
    publish_policy      text        NOT NULL,
    feedback_threshold  integer     NOT NULL,
    counts              jsonb       NOT NULL DEFAULT '{}',
    error_message       text        NOT NULL DEFAULT '',
    start_time          timestamptz NOT NULL DEFAULT now(),
    end_time            timestamptz
);
CREATE INDEX trainer_runs_newest ON trainer_runs (start_time DESC, run_id DESC);

CREATE TABLE trainer_fixes (
    fix_id          text        PRIMARY KEY,  -- the knowledge entry's id
    run_id          uuid        NOT NULL,
    questions       text[]      NOT NULL,
    answer          text        NOT NULL,
    interaction_ids text[]      NOT NULL,
    state           text        NOT NULL CHECK (state IN ('proposed', 'published', 'rejected', 'rolled_back')),
    teacher_model   text        NOT NULL,
    prompt_version  text        NOT NULL,
    create_time     timestamptz NOT NULL DEFAULT now(),
    reviewer        text        NOT NULL DEFAULT '',
    review_time     timestamptz,
    review_note     text        NOT NULL DEFAULT ''
);
CREATE INDEX trainer_fixes_newest ON trainer_fixes (create_time DESC, fix_id DESC);
