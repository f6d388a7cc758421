"""``python -m clca ...`` is the ``clca`` command (``accelerate launch -m clca train ...`` for multi-GPU training)."""

from clca.cli import entry

if __name__ == "__main__":
    entry()
