"""Models and data: the RT3 Transformer, built-in corpus, WikiText-2, GLUE, HF loaders."""
