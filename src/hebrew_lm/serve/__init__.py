"""Serving: a model folder out of the toolkit and into llama.cpp and Ollama (`hebrew-lm export gguf`), and
talking to a chat model, a Hugging Face folder or a GGUF file (`hebrew-lm chat`)."""
