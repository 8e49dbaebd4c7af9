"""DNS for the discovery tests: a real dnsmasq whose zone the test rewrites,
a hostile responder of the test's own, and the DNS wire format both need.

- `Dnsmasq`: dnsmasq (Debian's dnsmasq-base) on a loopback address of its
  own, port 53 (resolv.conf cannot name a port), answering only from its
  config file (`--no-resolv --no-hosts`): SRV (`srv-host=`), A/AAAA
  (`host-record=`), TXT (`txt-record=`), zones forwarded to a dead upstream
  (SERVFAIL). dnsmasq reads srv-host lines only at start, so `set_zone`
  restarts it (same address). `--log-queries` in a file of the test: the
  query counts.
- `HostileDNS`: UDP and TCP on another loopback address; answers well
  (`mode = "good"`) or in one of the malformed ways of `HOSTILE_MODES`.
- `private_resolver_wrapper`: a command prefix that runs a process (apache2)
  in a mount namespace of its own where a resolv.conf of the test (and
  optionally a hosts file) is bind-mounted over the machine's; /etc itself
  is never touched.

Traffic stays on 127.0.0.0/8."""

import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from harness import Httpd, private_files_wrapper, wait_until
from srtest.backend import InProcessServer

DNSMASQ = os.environ.get("SR_DNSMASQ", "/usr/sbin/dnsmasq")

TYPE_A, TYPE_NS, TYPE_CNAME, TYPE_TXT, TYPE_AAAA, TYPE_SRV = 1, 2, 5, 16, 28, 33
TYPE_NAMES = {TYPE_A: "A", TYPE_TXT: "TXT", TYPE_AAAA: "AAAA", TYPE_SRV: "SRV"}
RCODE_NOERROR, RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_REFUSED = 0, 2, 3, 5


# --------------------------------------------------------------------------
# wire format (RFC 1035, RFC 2782): enough to build what the tests send and
# to read what dnsmasq answers

def encode_name(name):
    """Uncompressed wire form of a dotted name (no length checks: the
    hostile responder builds illegal ones on purpose)."""
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            b = label.encode("ascii")
            out += bytes([len(b)]) + b
    return out + b"\0"


def header(qid, flags, qd=0, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def question(name, qtype):
    return encode_name(name) + struct.pack("!HH", qtype, 1)


def build_query(qid, name, qtype, rd=True):
    return header(qid, 0x0100 if rd else 0, qd=1) + question(name, qtype)


def rr(owner, rtype, ttl, rdata):
    """A resource record; owner: a dotted name or wire bytes (e.g. a
    compression pointer)."""
    o = owner if isinstance(owner, bytes) else encode_name(owner)
    return o + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def srv_rdata(priority, weight, port, target):
    t = target if isinstance(target, bytes) else encode_name(target)
    return struct.pack("!HHH", priority, weight, port) + t


def a_rdata(address):
    return socket.inet_aton(address)


def read_name(msg, off):
    """(dotted name, offset after it) with compression; raises ValueError on
    anything malformed (a name over 255 bytes included)."""
    labels = []
    end = None
    hops = 0
    wire = 1
    while True:
        if off >= len(msg):
            raise ValueError("name runs past the message")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise ValueError("cut pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            hops += 1
            if hops > 64:
                raise ValueError("pointer loop")
            continue
        if n & 0xC0:
            raise ValueError("reserved label type")
        off += 1
        if n == 0:
            break
        wire += n + 1
        if wire > 255:
            raise ValueError("name over 255 bytes")
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    return ".".join(labels), (end if end is not None else off)


def parse_message(msg):
    """{'id', 'flags', 'rcode', 'tc', 'questions', 'answers', 'authority',
    'additional'}; records are dicts (name, type, ttl, data)."""
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    off = 12
    out = {"id": qid, "flags": flags, "rcode": flags & 0xF, "tc": bool(flags & 0x0200),
           "questions": [], "answers": [], "authority": [], "additional": []}
    for _ in range(qd):
        name, off = read_name(msg, off)
        qtype, _qclass = struct.unpack("!HH", msg[off:off + 4])
        off += 4
        out["questions"].append((name, qtype))
    for section, count in (("answers", an), ("authority", ns), ("additional", ar)):
        for _ in range(count):
            name, off = read_name(msg, off)
            rtype, _cls, ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
            off += 10
            rdata = msg[off:off + rdlen]
            if len(rdata) != rdlen:
                raise ValueError("rdata runs past the message")
            if rtype == TYPE_SRV:
                prio, weight, port = struct.unpack("!HHH", rdata[:6])
                target, _ = read_name(msg, off + 6)
                data = (prio, weight, port, target)
            elif rtype == TYPE_A:
                data = socket.inet_ntoa(rdata)
            elif rtype == TYPE_AAAA:
                data = socket.inet_ntop(socket.AF_INET6, rdata)
            else:
                data = rdata
            off += rdlen
            out[section].append({"name": name, "type": rtype, "ttl": ttl, "data": data})
    return out


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def query(server, name, qtype, tcp=False, timeout=2.0, port=53):
    """One query to server (an address on 127/8); the parsed answer."""
    qid = random.randrange(65536)
    q = build_query(qid, name, qtype)
    if tcp:
        with socket.create_connection((server, port), timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(q)) + q)
            n = struct.unpack("!H", _recv_exact(s, 2))[0]
            msg = _recv_exact(s, n)
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(q, (server, port))
            msg, _ = s.recvfrom(65535)
    m = parse_message(msg)
    assert m["id"] == qid, (m["id"], qid)
    return m


# --------------------------------------------------------------------------
# addresses

_addr_lock = threading.Lock()
_addrs_taken = set()


def _port53_free(address):
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((address, 53))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_dns_address():
    """A loopback address (127.53.X.Y) on whose port 53 nothing is bound,
    not handed out before in this run (another run of this suite may run at
    the same time)."""
    with _addr_lock:
        for _ in range(200):
            a = "127.53.%d.%d" % (random.randrange(1, 255), random.randrange(1, 255))
            if a not in _addrs_taken and _port53_free(a):
                _addrs_taken.add(a)
                return a
    raise RuntimeError("no free loopback address for a DNS server")


# --------------------------------------------------------------------------
# the proxy's private resolver configuration

class ResolvConf:
    """A resolv.conf of the test naming its servers (an address or a list;
    written once: a process reads it at res_init, the bind mount keeps its
    inode)."""

    def __init__(self, path, servers, options="timeout:1 attempts:1"):
        self.path = Path(path)
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        text = "# resolv.conf of a discovery test (bind-mounted in a private namespace)\n"
        text += "".join("nameserver %s\n" % s for s in self.servers)
        if options:
            text += "options %s\n" % options
        self.path.write_text(text)

    def wrapper(self):
        return private_files_wrapper({"/etc/resolv.conf": self.path})


# --------------------------------------------------------------------------
# dnsmasq

# Nothing listens on 127.0.0.1 port 1: dnsmasq forwards there and never
# answers the client (a timeout; seen with dnsmasq 2.90, not SERVFAIL).
DEAD_UPSTREAM = "127.0.0.1#1"


class Srv:
    """One SRV record of a zone."""

    def __init__(self, target, port, priority=10, weight=1):
        self.target, self.port, self.priority, self.weight = target, port, priority, weight

    def line(self, name):
        return "srv-host=%s,%s,%d,%d,%d" % (name, self.target, self.port, self.priority,
                                             self.weight)


class Dnsmasq:
    """dnsmasq on its own loopback address:53, answering from a config file
    of the test. `set_zone` rewrites the file and restarts the server (the
    only way dnsmasq takes new srv-host lines); `stop`/`start` make it
    unreachable and back. Registered in Httpd.registry (stopped after the
    test)."""

    kind = "dnsmasq"

    def __init__(self, test_dir, name="dns", address=None, ttl=1, edns_max=None):
        self.name = name
        self.address = address or free_dns_address()
        self.dir = Path(test_dir) / ("dnsmasq-%s-%s" % (name, self.address))
        self.dir.mkdir(parents=True)
        self.conf = self.dir / "zone.conf"
        self.log = self.dir / "queries.log"
        self.pidfile = self.dir / "dnsmasq.pid"
        self.ttl = ttl
        self.edns_max = edns_max
        self.proc = None
        self.starts = 0
        self.server_pids = set()
        self.set_zone(restart=False)
        Httpd.registry.append(self)

    @property
    def addresses(self):
        return [self.address]

    # -- the zone ---------------------------------------------------------
    def set_zone(self, srv=None, hosts=None, txt=None, local=("svc.test",), forward=None,
                 ttl=None, restart=True):
        """srv: {name: [Srv, ...]}; hosts: {name: [address, ...]} (A and AAAA,
        a host-record= line each; a number in the list: their TTL); txt: {name:
        text}; local: domains answered only from this file (another name of
        them: NXDOMAIN; a name of no local domain: REFUSED); forward: {domain:
        upstream} (DEAD_UPSTREAM: dnsmasq never answers; a HostileDNS in
        mode "servfail": SERVFAIL); ttl: of the srv-host and txt records
        (dnsmasq's --local-ttl)."""
        if ttl is not None:
            self.ttl = ttl
        lines = ["# zone of the test, rewritten by dns_fixture.Dnsmasq.set_zone"]
        for name, recs in (srv or {}).items():
            lines += [r.line(name) for r in recs]
        for name, addrs in (hosts or {}).items():
            ttl_part = "".join("," + a for a in addrs if a.isdigit())
            lines += ["host-record=%s,%s%s" % (name, a, ttl_part)
                      for a in addrs if not a.isdigit()]
        for name, text in (txt or {}).items():
            lines.append('txt-record=%s,"%s"' % (name, text))
        lines += ["local=/%s/" % d for d in local]
        lines += ["server=/%s/%s" % (d, up) for d, up in (forward or {}).items()]
        self.conf.write_text("\n".join(lines) + "\n")
        if restart:
            self.restart()

    # -- lifecycle --------------------------------------------------------
    def command(self):
        cmd = [DNSMASQ, "--conf-file=%s" % self.conf, "--no-resolv", "--no-hosts",
               "--keep-in-foreground", "--log-queries", "--log-facility=%s" % self.log,
               "--listen-address=%s" % self.address, "--bind-interfaces", "--port=53",
               "--pid-file=%s" % self.pidfile, "--user=root", "--group=root",
               "--local-ttl=%d" % self.ttl, "--cache-size=0"]
        if self.edns_max:
            cmd.append("--edns-packet-max=%d" % self.edns_max)
        return cmd

    def start(self, timeout=10):
        assert self.proc is None, "dnsmasq already running"
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "stderr", "ab"))
        self.starts += 1
        self.server_pids.add(self.proc.pid)

        def answers():
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq exited (rc=%d): %s" % (
                    self.proc.returncode, (self.dir / "stderr").read_text(errors="replace")))
            try:
                query(self.address, "fixture-probe.invalid", TYPE_A, timeout=0.2)
                return True
            except (OSError, ValueError):
                return False
        wait_until(answers, timeout, 0.02, "dnsmasq on %s answering" % self.address)
        return self

    def stop(self, timeout=10):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # -- what it was asked ------------------------------------------------
    @property
    def error_log(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def queries(self, name=None, qtype=None):
        """The queries logged so far, in order: [(pid, type, name, client)];
        the fixture's own probes left out. dnsmasq answers TCP in a forked
        child: a query whose pid is not the server's came over TCP."""
        out = []
        for m in re.finditer(r"dnsmasq\[(\d+)\]: (?:\d+ \S+ )?query\[(\w+)\] (\S+) from (\S+)",
                             self.error_log):
            pid, t, n, client = m.groups()
            if n == "fixture-probe.invalid":
                continue
            if (name is None or n == name) and (qtype is None or t == qtype):
                out.append((int(pid), t, n, client))
        return out

    def count(self, name=None, qtype="SRV"):
        return len(self.queries(name, qtype))

    def tcp_queries(self, name=None, qtype="SRV"):
        return [q for q in self.queries(name, qtype) if q[0] not in self.server_pids]


class DnsmasqPair:
    """Two dnsmasq with the same zone, for a resolv.conf naming both
    (`addresses`): set_zone restarts one, then the other, so that the zone
    changes without a moment in which no server answers (the C library
    asks the second server when the first refuses). Queries are counted
    over both."""

    kind = "dnsmasq-pair"
    error_log = ""

    def __init__(self, test_dir, name="dns", **kw):
        self.servers = [Dnsmasq(test_dir, "%s-1" % name, **kw),
                        Dnsmasq(test_dir, "%s-2" % name, **kw)]
        self.address = self.servers[0].address
        self.addresses = [d.address for d in self.servers]

    def set_zone(self, **kw):
        restart = kw.pop("restart", True)
        for d in self.servers:
            d.set_zone(restart=False, **kw)
            if restart:
                d.restart()

    def start(self):
        for d in self.servers:
            d.start()

    def stop(self):
        for d in self.servers:
            d.stop()

    def queries(self, name=None, qtype=None):
        return [q for d in self.servers for q in d.queries(name, qtype)]

    def count(self, name=None, qtype="SRV"):
        return len(self.queries(name, qtype))

    def tcp_queries(self, name=None, qtype="SRV"):
        return [q for d in self.servers for q in d.tcp_queries(name, qtype)]

    def current_queries(self, name=None, qtype="SRV"):
        """The queries the servers running now got (over UDP): those made
        since the last set_zone."""
        return [q for d in self.servers for q in d.queries(name, qtype)
                if d.proc is not None and q[0] == d.proc.pid]


# --------------------------------------------------------------------------
# a DNS responder of the test's own: good answers, or malformed ones

# Every kind of bad answer HostileDNS gives (mode -> what it sends). Each
# applies to every query it gets (SRV, A, AAAA), built for that query.
HOSTILE_MODES = {
    "short": "7 bytes: less than a header",
    "wrong_id": "a good answer with another ID",
    "cut_in_record": "a good answer cut inside the first record's fixed part, TC not set",
    "cut_in_rdata": "a good answer cut inside the first record's data, TC not set",
    "counts_too_large": "ANCOUNT 20 more than the records sent",
    "pointer_to_itself": "a name that is a compression pointer to itself",
    "pointer_pair": "an SRV target: two pointers pointing at each other",
    "pointer_past_end": "an SRV target: a pointer beyond the message",
    "reserved_label_type": "an SRV target starting with a label of type 01 (0x41)",
    "srv_rdata_short": "SRV data of 4 bytes (priority and weight only)",
    "rdlength_past_end": "the last record's RDLENGTH 200 beyond the message",
    "name_over_255": "the first SRV target: five 63-byte labels (321 bytes)",
    "name_over_255_by_pointer": "an SRV target of two 63-byte labels + a pointer to a "
                                "141-byte name (269 bytes)",
    "a_rdlength_3": "A records (additional section, A answers) of 3 bytes",
    "tc_then_tcp_garbage": "UDP: TC, no record; TCP: length 500, 20 bytes, close",
    "tc_then_tcp_close": "UDP: TC, no record; TCP: closed without a byte",
    "tc_then_tcp_tc_empty": "UDP: TC, no record; TCP: TC again, no record",
}
MODES_THAT_TIME_OUT = ("short", "wrong_id")   # the C library drops these answers


class HostileDNS(InProcessServer):
    """UDP and TCP on address:53. `srv` {name: [(priority, weight, port,
    target)]}, `hosts` {target: address}; `mode` "good" answers them (SRV
    answers carry the targets' A records in the additional section, AAAA
    is NODATA, other names NXDOMAIN), "servfail"/"refused" answer that
    rcode, any key of HOSTILE_MODES a malformed answer. `ttl` of every good
    record; `additional` False: SRV answers without the A records;
    `servfail_names`: names whose A and AAAA queries get SERVFAIL (in mode
    "good"). `log`: (time.monotonic(), mode, transport, name, type) of every
    query. Registered in Httpd.registry (stopped after the test)."""

    kind = "hostile-dns"
    error_log = ""
    access_log = ""

    def __init__(self, name="hostile", address=None, srv=None, hosts=None, ttl=1):
        self.name = name
        self.address = address or free_dns_address()
        self.srv = dict(srv or {})
        self.hosts = dict(hosts or {})
        self.ttl = ttl
        self.additional = True      # SRV answers carry the targets' A records
        self.servfail_names = set()  # names whose A/AAAA queries get SERVFAIL
        self.mode = "good"
        self.lock = threading.Lock()
        self.log = []
        self._stop = threading.Event()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((self.address, 53))
        self.udp.settimeout(0.2)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((self.address, 53))
        self.tcp.listen(64)
        self.tcp.settimeout(0.2)
        self._threads = [threading.Thread(target=self._udp_loop, daemon=True),
                         threading.Thread(target=self._tcp_loop, daemon=True)]
        for t in self._threads:
            t.start()
        Httpd.registry.append(self)

    # -- bookkeeping ------------------------------------------------------
    def set_mode(self, mode):
        assert mode in HOSTILE_MODES or mode in ("good", "servfail", "refused"), mode
        with self.lock:
            self.mode = mode

    def queries(self, mode=None, transport=None, qtype=None, since=0.0):
        with self.lock:
            return [q for q in self.log if q[0] >= since
                    and (mode is None or q[1] == mode)
                    and (transport is None or q[2] == transport)
                    and (qtype is None or q[4] == qtype)]

    # -- building answers -------------------------------------------------
    def _records(self, qname, qtype):
        """(rcode, answers, additional): lists of (owner, type, ttl, data);
        an SRV's data is (priority, weight, port, target)."""
        if qtype == TYPE_SRV and qname in self.srv:
            ans = [(qname, TYPE_SRV, self.ttl, rec) for rec in self.srv[qname]]
            add = [(rec[3], TYPE_A, self.ttl, self.hosts[rec[3]])
                   for rec in self.srv[qname] if rec[3] in self.hosts and self.additional]
            return RCODE_NOERROR, ans, add
        if qname in self.hosts:
            if qtype == TYPE_A:
                return RCODE_NOERROR, [(qname, TYPE_A, self.ttl, self.hosts[qname])], []
            return RCODE_NOERROR, [], []
        if qname in self.srv:
            return RCODE_NOERROR, [], []
        return RCODE_NXDOMAIN, [], []

    def build(self, qid, qname, qtype, mode, tcp=False):
        """The answer (bytes) to a query in the given mode, or None (no
        answer: the TCP connection is closed)."""
        if mode == "good" and qname in self.servfail_names and qtype in (TYPE_A, TYPE_AAAA):
            mode = "servfail"
        if mode in ("servfail", "refused"):
            rcode = RCODE_SERVFAIL if mode == "servfail" else RCODE_REFUSED
            return header(qid, 0x8180 | rcode, qd=1) + question(qname, qtype)
        if mode.startswith("tc_then_"):
            if not tcp:
                return header(qid, 0x8380, qd=1) + question(qname, qtype)
            if mode == "tc_then_tcp_close":
                return None
            if mode == "tc_then_tcp_garbage":
                return b"GARBAGE"   # the TCP loop sends a lying length prefix
            return header(qid, 0x8780, qd=1) + question(qname, qtype)   # TC again
        rcode, ans, add = self._records(qname, qtype)
        msg = bytearray(header(qid, 0x8580 | rcode, qd=1, an=len(ans), ar=len(add)))
        msg += question(qname, qtype)
        qend = len(msg)
        first_target_off = None
        last_rdata = None
        for i, (owner, rtype, ttl, data) in enumerate(ans + add):
            start = len(msg)
            if mode == "pointer_to_itself" and i == 0:
                o = struct.pack("!H", 0xC000 | start)
            elif owner == qname:
                o = struct.pack("!H", 0xC000 | 12)
            else:
                o = encode_name(owner)
            msg += o
            rdata_off = len(msg) + 10
            if rtype == TYPE_SRV:
                prio, weight, port, tgt = data
                fixed = struct.pack("!HHH", prio, weight, port)
                t = encode_name(tgt)
                if mode == "pointer_pair":
                    t = struct.pack("!HH", 0xC000 | (rdata_off + 8), 0xC000 | (rdata_off + 6))
                elif mode == "pointer_past_end":
                    t = struct.pack("!H", 0xC000 | 0x3FF0)
                elif mode == "reserved_label_type":
                    t = b"\x41x" + t
                elif mode == "name_over_255" and i == 0:
                    t = (b"\x3f" + b"a" * 63) * 5 + b"\0"
                elif mode == "name_over_255_by_pointer":
                    long_prefix = (b"\x3f" + b"a" * 63) * 2
                    if first_target_off is None:
                        first_target_off = rdata_off + 6
                        t = long_prefix + t
                    else:
                        t = long_prefix + struct.pack("!H", 0xC000 | first_target_off)
                rdata = fixed + t
                if mode == "srv_rdata_short":
                    rdata = fixed[:4]
            elif rtype == TYPE_A:
                rdata = a_rdata(data)
                if mode == "a_rdlength_3":
                    rdata = rdata[:3]
            else:
                rdata = data
            msg += struct.pack("!HHIH", rtype, 1, ttl, len(rdata))
            last_rdata = len(msg)
            msg += rdata
        if mode == "wrong_id":
            msg[0:2] = struct.pack("!H", qid ^ 0xFFFF)
        elif mode == "short":
            return bytes(msg[:7])
        elif mode == "cut_in_record" and ans:
            return bytes(msg[:qend + 2 + 5])
        elif mode == "cut_in_rdata" and ans:
            return bytes(msg[:qend + 2 + 10 + 3])
        elif mode == "counts_too_large":
            msg[6:8] = struct.pack("!H", len(ans) + 20)
        elif mode == "rdlength_past_end" and last_rdata is not None:
            # the last record's RDLENGTH: the 2 bytes before its data
            msg[last_rdata - 2:last_rdata] = struct.pack("!H", len(msg) - last_rdata + 200)
        return bytes(msg)

    def _answer(self, data, transport):
        try:
            qid = struct.unpack("!H", data[:2])[0]
            qname, off = read_name(data, 12)
            qtype = struct.unpack("!H", data[off:off + 2])[0]
        except (ValueError, struct.error):
            return None, None
        with self.lock:
            mode = self.mode
            self.log.append((time.monotonic(), mode, transport, qname, qtype))
        return mode, self.build(qid, qname, qtype, mode, tcp=(transport == "tcp"))

    # -- serving ----------------------------------------------------------
    def _udp_loop(self):
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            _, out = self._answer(data, "udp")
            if out is not None:
                try:
                    self.udp.sendto(out, peer)
                except OSError:
                    pass

    def _tcp_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()

    def _tcp_conn(self, conn):
        conn.settimeout(5)
        try:
            while not self._stop.is_set():
                n = struct.unpack("!H", _recv_exact(conn, 2))[0]
                mode, out = self._answer(_recv_exact(conn, n), "tcp")
                if out is None:
                    return
                if mode == "tc_then_tcp_garbage":
                    conn.sendall(struct.pack("!H", 500) + b"\x13" * 20)
                    return
                conn.sendall(struct.pack("!H", len(out)) + out)
        except (OSError, ConnectionError, struct.error):
            pass
        finally:
            conn.close()

    def _shutdown(self, timeout):
        for t in self._threads:
            t.join(timeout)
        self.udp.close()
        self.tcp.close()
