"""`python -m imagify.entrypoints.cli`: the `imagify` command."""

from imagify.entrypoints.cli import main

main()
