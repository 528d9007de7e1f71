"""CLI subcommands: every module here with a `register(subparsers)` function adds one or more."""
