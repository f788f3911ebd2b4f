-- A proposed new entry lists the published entries nearest its questions (at
-- most 5, best first, as the run's search scored them), so that a reviewer can
-- see the topic may be covered already and approve the fix into one of them
-- (ApproveFixRequest.into_entry_id) instead of publishing a duplicate.
ALTER TABLE trainer_fixes ADD COLUMN nearby jsonb NOT NULL DEFAULT '[]';
-- The entry such an approval writes the fix's questions into, recorded before
-- the index changes: an approval that stops half way is finished by the same
-- approval again, and no other review of the fix leaves its phrasings behind.
ALTER TABLE trainer_fixes ADD COLUMN into_entry_id text NOT NULL DEFAULT '';
