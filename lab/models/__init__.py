"""Models: the RT3 Transformer language model and Hugging Face BERT-family classifiers."""
