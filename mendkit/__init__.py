"""The shared kit every Mend service imports: settings, logging, telemetry,
server bootstrap, who may call what (bearer tokens checked once per call),
client channels, domain errors, page tokens and the embedded PostgreSQL.
Services depend on the kit; the kit depends only on libraries and the
generated contracts."""
