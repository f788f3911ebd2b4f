"""Text embedders, chosen by `MEND_EMBEDDINGS`: the embedded local MiniLM
(default), AWS Bedrock, or any OpenAI-compatible endpoint."""
