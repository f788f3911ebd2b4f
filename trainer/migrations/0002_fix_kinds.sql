-- Fixes of three kinds: a new entry (as before), phrasings added to an existing
-- entry, or an existing entry's answer revised. For the two new kinds the fix is
-- the proposal itself: under review the entry is untouched until approval, so
-- what to apply (and, once applied, what to undo) is kept here.
ALTER TABLE trainer_fixes
    ADD COLUMN kind            text   NOT NULL DEFAULT 'new_entry'
        CHECK (kind IN ('new_entry', 'add_phrasings', 'edit_answer')),
    -- The entry the fix changes: its own new entry (= fix_id) or the target entry.
    ADD COLUMN entry_id        text   NOT NULL DEFAULT '',
    ADD COLUMN added_questions text[] NOT NULL DEFAULT '{}',
    ADD COLUMN previous_answer text   NOT NULL DEFAULT '';
UPDATE trainer_fixes SET entry_id = fix_id WHERE entry_id = '';
-- A run looks up the pending change of an entry, and the change holding an interaction.
CREATE INDEX trainer_fixes_target ON trainer_fixes (entry_id, kind) WHERE kind <> 'new_entry';
CREATE INDEX trainer_fixes_interactions ON trainer_fixes USING gin (interaction_ids) WHERE kind <> 'new_entry';
