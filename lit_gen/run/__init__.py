"""What every command shares about a run: its directory contract (`dir`), checkpoint policy
and loading (`checkpoint`), the Trainer with its loggers and callbacks (`trainer`,
`loggers`), provenance, and the fit command line (`cli`)."""
