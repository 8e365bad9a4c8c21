"""Training townsquare's own generative model: ``corpus`` (governed), ``tokenizer``, ``data`` (shards), ``model`` (GPT), ``trainer``."""
