"""Reading: the extractive reader, its span decoding, and the runtimes it runs on."""
