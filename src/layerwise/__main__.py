"""``python -m layerwise``: the same command line as the ``layerwise`` console script."""

from .cli import main

if __name__ == "__main__":
    main()
