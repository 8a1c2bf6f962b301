"""`python -m amlvc` runs the command line."""

from amlvc.cli import main

main()
