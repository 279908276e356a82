"""The maintenance loop: drift check → fine-tune on old + new data → re-optimize → canary or
shadow → compare on labelled rows → promote or roll back, every step logged with its numbers."""
