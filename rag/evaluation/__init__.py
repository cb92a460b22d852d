"""Scoring: SQuAD metrics, gold question sets, and the stage-by-stage evaluation that ``rag eval`` runs.

The serving core never imports this package.
"""
