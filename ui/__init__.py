"""Gradio tabs of the EmoLens app: one module per tab, thin handlers over emo_core."""
