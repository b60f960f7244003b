"""Supervised fine-tuning of causal LMs on conversations, and chatting with the result."""
