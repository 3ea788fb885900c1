"""Korean language tools on Kiwi (``kiwipiepy``, the ``korean`` extra): speech level (존댓말/반말) and morphemes
(``analysis``), and rewriting an utterance to the other speech level (``conversion``).

May import: core. ``python -m chathuman_hf.korean speech-level`` labels one utterance per line.
"""
