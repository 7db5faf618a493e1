"""`python -m paced_curate` runs the `paced` command line."""

from paced_curate.cli import main

if __name__ == "__main__":
    main()
