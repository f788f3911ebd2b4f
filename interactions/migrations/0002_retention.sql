-- Retention (INTERACTIONS_RETENTION_DAYS): an exchange older than that has its
-- personal data masked, once (interactions/retention.py), or is deleted.
ALTER TABLE interactions ADD COLUMN personal_data_masked boolean NOT NULL DEFAULT false;

-- What is left to mask, oldest first: as small as the exchanges not masked yet.
CREATE INDEX interactions_to_mask ON interactions ("timestamp") WHERE NOT personal_data_masked;
