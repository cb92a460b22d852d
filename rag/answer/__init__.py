"""Answering: retrieve, read, and answer with numbered citations."""
