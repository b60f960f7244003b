"""Fine-tuning and evaluation: NER and sentiment with the paper's protocol (`hebrew-lm finetune`)."""
