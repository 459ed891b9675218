"""Teachers: the frozen encoders of the teacher side, whose embeddings the students learn to meet.

- ``frozen.py``: the frozen-teacher wrapper (eval-locked, no gradient, embedding cache), and
  teachers for precomputed embeddings and user modules;
- ``text.py``: sentence-transformers text teachers, the bundled all-MiniLM-L6-v2 among them;
- ``image.py``: transformers vision models and CLIP vision towers, frozen and pooled.
"""
