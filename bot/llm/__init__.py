"""Chat models, chosen by `MEND_LLM`: the embedded local GGUF model (default).
AWS Bedrock and OpenAI-compatible endpoints are not built yet (issue 3)."""
