"""QLoRA fine-tuning of the test-writing model and export of a GGUF LoRA adapter for the plugin."""
