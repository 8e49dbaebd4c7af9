"""The test toolkit: one way to do each thing the suites need.

  wait     wait_until, the one polling loop (a clear TimeoutError)
  procs    /proc reading, child reaping, port probes (ss, connect, bind)
  apache   apache2 for tests: argv, start (-k start -D NO_DETACH), -k
           commands, -t; Httpd, an instance in its own directory
  backend  PyBackend, the one scriptable raw-socket HTTP backend
  metrics  the status endpoint's Prometheus text, parsed by prometheus_client

Used by tests/integration (harness.py re-exports it), tests/faults
(faultstack.py), tests/stack (conftest.py) and bench/hash. The suites put
tests/ on sys.path (their conftest.py) and import `srtest.<module>`.
tests/httpretry.py stays a single stdlib-only file: the Swarm client image
copies it.
"""
