"""Logic behind the everyday commands (submit/jobs/stop, replay/export/import, monitor); the command
modules in drnflow.commands only parse flags and print."""
