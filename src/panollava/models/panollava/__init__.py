"""The custom PanoLLaVA VLM: vision encoder -> resampler -> panorama projector -> LLM."""
