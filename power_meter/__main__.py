"""`python -m power_meter ...`: the `rt3lab meter` commands on their own."""

from lab.cli import main

if __name__ == "__main__":
    import sys

    main(["meter", *sys.argv[1:]])
