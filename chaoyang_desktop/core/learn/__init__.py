"""Learning from labelled patches: datasets, evaluation metrics, evaluation and fine-tuning."""
