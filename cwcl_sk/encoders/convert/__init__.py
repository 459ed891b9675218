"""Converters that turn pretrained checkpoints into folders the students load offline."""
