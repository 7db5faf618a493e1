"""The built-in world: a character tokenizer, tiny Qwen2 models and arithmetic problems."""
