"""Chat models, chosen by `MEND_LLM`: the embedded local GGUF model (default),
AWS Bedrock (Converse) or any OpenAI-compatible endpoint."""
