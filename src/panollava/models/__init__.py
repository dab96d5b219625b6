"""Models: ``panollava/`` (the custom PanoLLaVA VLM) and ``adapters/`` (existing VLM families)."""
