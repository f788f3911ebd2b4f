"""Provider clients shared by chat models and embedders of one provider: how to
reach it and how its failures become Mend's domain errors."""
