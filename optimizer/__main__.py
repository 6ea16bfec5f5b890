"""`python -m optimizer` runs the greenbelt command line."""

from optimizer.cli import main

main()
