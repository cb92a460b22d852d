"""Training and calibration of the project's extractive reader.

    python -m rag.training.train --data ../shared/qa-train --out runs/reader
    python -m rag.training.calibrate --reader runs/reader --data ../shared/qa-train

The serving core never imports this package.
"""
