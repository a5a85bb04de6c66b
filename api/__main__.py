"""`python -m api` is the `tollgate` command."""

from api.cli import main

main()
