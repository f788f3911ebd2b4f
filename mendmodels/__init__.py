"""Mend's model layer: chat models and text embedders, their provider clients
(AWS Bedrock, OpenAI-compatible endpoints), the embedded defaults, the typed
settings that choose them and the selection from those settings. Both the bot
and the trainer import it; it imports only the kit, never a service."""
