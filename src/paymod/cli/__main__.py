"""`python -m paymod.cli`: the `paymod` command."""

from paymod.cli import main

main()
