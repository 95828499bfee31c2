"""Measured image cues (EmoVIT's attribute list) from offline models shipped in registry packages."""
