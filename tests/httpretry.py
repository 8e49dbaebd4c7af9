"""The HTTP client's retry rule of the load tests (tests/faults,
tests/swarm), in one place. Python's standard library only: the Swarm test
copies this file into its client image.

RFC 9112 section 9.3.1: a client MAY retry an idempotent request sent on a
reused connection that the server closed before any byte of a response (the
server cannot have acted on it). Browsers, curl and urllib3 do, once. httpd
relies on it: a graceful restart or stop closes idle client keep-alive
connections, and mod_proxy_http closes the client connection (instead of
answering 502) when a pooled backend connection breaks under a request on a
reused client connection. The load clients retry exactly that case, once, on
a new connection, and count each retry; anything else is a failure.

Before reusing an idle keep-alive connection, a client first checks that the
server has not closed it already (connection_dropped), as urllib3 and
browsers do, and opens a new one instead (not a retry: nothing was sent).
"""
import http.client
import select

# What a server closing the connection before any byte of the response looks
# like to http.client (EOF before the status line, RST while sending or
# reading).
RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def may_retry(error, reused, retrying):
    """May the request that failed with `error` be sent again, once, on a new
    connection? Only when it went out on a reused connection (`reused`), was
    not itself such a retry (`retrying`), and the server closed the connection
    before any byte of a response (RETRYABLE). The caller sends only
    idempotent requests."""
    return bool(reused) and not retrying and isinstance(error, RETRYABLE)


def connection_dropped(conn):
    """True when the server already closed this idle keep-alive connection
    (an http.client.HTTPConnection): the socket is readable while no response
    is expected, i.e. EOF or RST."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
