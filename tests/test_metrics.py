"""The Prometheus endpoint (`[metrics] listen`) against the real binary.

A scrape, then one login, one failed login, one LMTP delivery and one FETCH, then a scrape
again: each counter moved by exactly what was done, and the command latency histogram has the
FETCH. Bad requests get 400/404/405 and the endpoint keeps serving; without `[metrics]` the
server listens on nothing but its mail ports.
"""

import http.client
import imaplib
import os
import tempfile
import socket
import time
import unittest

from harness import HOST, AbuseServer, ServerTest, free_port, message, wait_for_port


def scrape(port):
    """GET /metrics: (status, content type, {series: value}) with series as exposed."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        body = response.read().decode("utf-8")
        content_type = response.getheader("Content-Type")
        status = response.status
    finally:
        connection.close()
    samples = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        samples[series] = float(value)
    return status, content_type, samples


def total(samples, prefix):
    """The sum of every series whose name and labels start with `prefix`."""
    return sum(value for series, value in samples.items() if series.startswith(prefix))


def raw_request(port, data):
    """Sends `data` as it is and returns the response's status line."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    return received.split(b"\r\n", 1)[0].decode("ascii", "replace")


def listening_ports(pid):
    """The TCP ports process `pid` listens on (from /proc: its socket inodes in LISTEN)."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


class MetricsOn(ServerTest):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="skua-test-")
        self.metrics_port = free_port()
        config = f'[metrics]\nlisten = ["{HOST}:{self.metrics_port}"]\n'
        data_dir = os.path.join(self.tmp, "data")
        self.server = AbuseServer(data_dir, self.USERS, shards=2, config=config).start()
        wait_for_port(self.metrics_port, self.server.process)

    def settled(self):
        """A scrape once the harness's port probes (a connect and close on each mail port) are
        accepted and closed: nothing open, and the accepted counts as in the scrape before."""
        deadline = time.monotonic() + 10
        _, _, last = scrape(self.metrics_port)
        while time.monotonic() < deadline:
            time.sleep(0.05)
            status, content_type, now = scrape(self.metrics_port)
            accepted = total(now, "skua_connections_accepted_total")
            if (
                total(now, "skua_connections_open") == 0.0
                and accepted == total(last, "skua_connections_accepted_total")
                and accepted >= 2.0
            ):
                return status, content_type, now
            last = now
        self.fail(f"connections never settled: {last}")

    def test_counters_move_by_exactly_what_was_done(self):
        status, content_type, before = self.settled()
        self.assertEqual(status, 200)
        self.assertEqual(content_type, "text/plain; version=0.0.4; charset=utf-8")

        client = self.server.imap("alice", "alice-pw")
        refused = imaplib.IMAP4(HOST, self.server.imap_port, timeout=30)
        with self.assertRaises(imaplib.IMAP4.error):
            refused.login("bob", "wrong")
        refused.logout()
        lmtp = self.server.lmtp()
        lmtp.sendmail("sender@example.org", ["alice@localhost"], message("metrics", "one"))
        lmtp.quit()
        client.select("INBOX")
        typ, data = client.fetch("1", "(BODY.PEEK[])")
        self.assertEqual(typ, "OK", data)
        client.logout()

        _, _, after = scrape(self.metrics_port)

        def moved(series):
            return after.get(series, 0.0) - before.get(series, 0.0)

        ok = 'skua_logins_total{result="ok",mechanism="LOGIN-COMMAND"}'
        failed = 'skua_logins_total{result="failed",mechanism="LOGIN-COMMAND"}'
        self.assertEqual(moved(ok), 1.0, after)
        self.assertEqual(moved(failed), 1.0, after)
        self.assertEqual(
            total(after, "skua_logins_total") - total(before, "skua_logins_total"), 2.0
        )
        self.assertEqual(moved('skua_lmtp_deliveries_total{outcome="delivered"}'), 1.0)
        self.assertEqual(
            total(after, "skua_lmtp_deliveries_total")
            - total(before, "skua_lmtp_deliveries_total"),
            1.0,
        )
        self.assertEqual(moved('skua_imap_command_seconds_count{command="FETCH"}'), 1.0)
        self.assertEqual(
            moved('skua_imap_command_seconds_bucket{command="FETCH",le="+Inf"}'), 1.0
        )
        self.assertEqual(moved('skua_imap_command_seconds_count{command="SELECT"}'), 1.0)
        # Two LOGIN commands (the second failed), each answered once.
        self.assertEqual(moved('skua_imap_command_seconds_count{command="LOGIN"}'), 2.0)
        self.assertGreater(after['skua_imap_command_seconds_sum{command="FETCH"}'], 0.0)

        def accepted(protocol):
            prefix = f'skua_connections_accepted_total{{protocol="{protocol}"'
            return total(after, prefix) - total(before, prefix)

        self.assertEqual(accepted("imap"), 2.0)
        self.assertEqual(accepted("lmtp"), 1.0)
        self.assertEqual(accepted("imaps"), 0.0)
        self.assertGreater(moved('skua_received_bytes_total{protocol="imap"}'), 0.0)
        self.assertGreater(moved('skua_sent_bytes_total{protocol="imap"}'), 0.0)
        self.assertGreater(moved('skua_received_bytes_total{protocol="lmtp"}'), 0.0)
        self.assertGreaterEqual(moved("skua_flush_round_seconds_count"), 1.0)
        self.assertGreaterEqual(moved("skua_fdatasync_seconds_count"), 1.0)
        self.assertGreater(after["skua_resident_memory_bytes"], 1 << 20)
        self.assertGreater(after["skua_open_fds"], 0.0)
        self.assertEqual(total(after, "skua_open_stores"), 1.0, "alice's store")
        for shard in ("0", "1"):
            self.assertIn(f'skua_calls_waiting{{shard="{shard}"}}', after)
            self.assertIn(f'skua_stalls_total{{shard="{shard}"}}', after)

        # The connections are closed: nothing counts as open (the gauge follows a hand-off).
        deadline = time.monotonic() + 5
        while True:
            _, _, now = scrape(self.metrics_port)
            if total(now, "skua_connections_open") == 0.0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(total(now, "skua_connections_open"), 0.0, now)

    def test_bad_requests_are_refused_and_the_endpoint_stays_up(self):
        port = self.metrics_port
        self.assertEqual(raw_request(port, b"GARBAGE\r\n\r\n"), "HTTP/1.1 400 Bad Request")
        self.assertEqual(
            raw_request(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.1 404 Not Found"
        )
        self.assertEqual(
            raw_request(port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.1 200 OK"
        )
        self.assertEqual(
            raw_request(port, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            "HTTP/1.1 405 Method Not Allowed",
        )
        self.assertEqual(
            raw_request(port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n"),
            "HTTP/1.1 400 Bad Request",
        )
        # A client that connects and says nothing holds a place, not the endpoint.
        idle = [socket.create_connection((HOST, port), timeout=10) for _ in range(3)]
        status, _, samples = scrape(port)
        self.assertEqual(status, 200)
        self.assertIn('skua_logins_total{result="ok",mechanism="PLAIN"}', samples)
        for sock in idle:
            sock.close()
        # The mail ports never answered for it.
        self.assertTrue(self.server.imap("carol", "carol-pw").logout())

    def test_the_endpoint_listens_beside_the_mail_ports(self):
        ports = listening_ports(self.server.process.pid)
        self.assertIn(self.metrics_port, ports)


class MetricsOffByDefault(ServerTest):
    def test_no_endpoint_without_a_metrics_section(self):
        ports = listening_ports(self.server.process.pid)
        expected = {self.server.imap_port, self.server.lmtp_port, self.server.imaps_port}
        self.assertEqual(ports, expected, "nothing listens but the mail ports")


if __name__ == "__main__":
    unittest.main()
