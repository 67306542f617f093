"""The output formats, named once: the CLI's choices, the config's check, the renderers' table."""

OUTPUT_FORMATS = ("full", "concise", "json", "json-lines", "github", "sarif", "junit")
# Formats read by programs: no colour, no progress bar on stdout, statistics on stderr.
MACHINE_FORMATS = ("json", "json-lines", "github", "sarif", "junit")
