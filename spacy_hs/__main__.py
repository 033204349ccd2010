"""The `spacy-hs` command (``python -m spacy_hs``): Ctrl-C is quiet at any moment.

This module loads nothing heavy before it takes Ctrl-C over: importing the commands (spaCy,
numpy, typer) takes a second or more, and a Ctrl-C then would print a KeyboardInterrupt
traceback. Commands that clean up on Ctrl-C still do (they see the KeyboardInterrupt first).
"""

from __future__ import annotations

import signal
import sys

from .errors import EXIT_INTERRUPTED  # a module of strings: it loads at once


def main() -> None:
    """Run the `spacy-hs` command line; on Ctrl-C, one line and exit code 130."""
    try:
        from .cli import main as run

        run()
    except KeyboardInterrupt:
        # Another Ctrl-C while this exits ends the process at once, still without a traceback.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        print("\u2718 Interrupted.", flush=True)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
