-- Whether the bot said it was not sure its answer fits the question (a hedged
-- follow-up answered from the conversation's topic: Interaction.unsure).
ALTER TABLE interactions ADD COLUMN unsure boolean NOT NULL DEFAULT false;
