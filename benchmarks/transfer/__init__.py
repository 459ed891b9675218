"""The transfer benchmark's data: a general paired speech corpus and a keyword-spotting set.

The student is aligned once on general-domain English sentences, none written for an
evaluation task, and then evaluated zero-shot on spoken digits, SLURP intents and keywords.

- :mod:`.wordnet`: the sentence source, the example sentences of WordNet 3.0, kept as a list;
- :mod:`.corpus`: cleaning, filtering and the seeded draw of the training sentences, and the
  command that builds and speaks them (``python -m benchmarks.transfer.corpus``);
- :mod:`.speech`: speaking the sentences to audio files and a manifest, resumably;
- :mod:`.keywords`: the 35 words of Speech Commands and their label prompts.
"""
