"""The local mesh launcher: `python -m mesh` (README's run command)."""
