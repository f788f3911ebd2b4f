-- The regression gate (trainer/regressions.py): what a fix would take from
-- entries that answer right (replayed when the run wrote it, and again on
-- approval), and the phrasings the gate kept out of it. Runs keep the
-- evaluation of the regression set before and after their fixes.
ALTER TABLE trainer_fixes
    ADD COLUMN regressions        jsonb  NOT NULL DEFAULT '[]',
    ADD COLUMN withheld_questions text[] NOT NULL DEFAULT '{}';
ALTER TABLE trainer_runs
    ADD COLUMN evaluation_before jsonb,
    ADD COLUMN evaluation_after  jsonb;
