"""Tasks own prompts, parsing and result types; they call backends and the cue models."""
