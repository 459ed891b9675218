"""Students: the trainable encoders of the student side, one module per modality.

- ``audio.py``: wav2vec2, HuBERT and Whisper encoders, and a small log-mel CNN;
- ``image.py``: a small CNN and a vision transformer;
- ``text.py``: a transformers text model, for the LiT direction (image teachers);
- ``generic.py``: an MLP on numeric features;
- ``activation_cache.py``: per-clip outputs of a speech student's frozen lower layers.
"""
