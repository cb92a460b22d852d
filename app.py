"""Launch the chat UI: ``python app.py [--host H] [--port P] [--index DIR]``, the same as ``rag serve``.

The UI itself lives in ``rag.serve.ui``.
"""

import sys

from rag.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
