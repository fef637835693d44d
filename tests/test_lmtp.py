"""LMTP through Python's smtplib.LMTP, checked through IMAP."""

import socket
import threading
import unittest

from harness import HOST, ServerTest, lmtp_deliver, message, without_trace_fields
from test_imap import fetch_uid_map


class LmtpDelivery(ServerTest):
    def test_three_recipients_three_replies_three_copies(self):
        lmtp = self.server.lmtp()
        raw = message("to three", "one message, three mailboxes")
        replies = lmtp_deliver(
            lmtp, "s@example.org", ["alice@localhost", "bob@localhost", "carol"], raw
        )
        self.assertEqual([code for code, _ in replies], [250, 250, 250], replies)
        lmtp.quit()
        for user in ("alice", "bob", "carol"):
            c = self.server.imap(user, f"{user}-pw")
            c.select("INBOX")
            bodies = list(fetch_uid_map(c).values())
            self.assertEqual(len(bodies), 1, user)
            # skua prepends Return-Path as the final delivery agent; the rest is as sent.
            self.assertTrue(bodies[0].endswith(raw), user)
            self.assertTrue(bodies[0].startswith(b"Return-Path: <s@example.org>\r\n"))
            c.logout()

    def test_unknown_recipient_is_550_at_rcpt(self):
        lmtp = self.server.lmtp()
        lmtp.mail("s@example.org")
        code, text = lmtp.rcpt("nobody@localhost")
        self.assertEqual(code, 550)
        self.assertIn(b"5.1.1", text)
        code, _ = lmtp.rcpt("alice@localhost")
        self.assertEqual(code, 250)
        code, _ = lmtp.data(message("partial", "only alice"))
        self.assertEqual(code, 250)
        lmtp.quit()

    def test_dot_stuffing_round_trip(self):
        lmtp = self.server.lmtp()
        raw = message("dots", ".leading dot\r\n..two dots\r\n.")
        replies = lmtp_deliver(lmtp, "s@example.org", ["alice@localhost"], raw)
        self.assertEqual(replies[0][0], 250)
        lmtp.quit()
        c = self.server.imap("alice", "alice-pw")
        c.select("INBOX")
        body = list(fetch_uid_map(c).values())[0]
        self.assertTrue(body.endswith(raw))
        c.logout()

    def test_pipelined_transaction_in_one_write(self):
        raw = message("pipelined", "x")
        with socket.create_connection((HOST, self.server.lmtp_port), timeout=10) as s:
            f = s.makefile("rb")
            self.assertTrue(f.readline().startswith(b"220"))
            s.sendall(
                b"LHLO test\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<alice@localhost>\r\n"
                b"RCPT TO:<bob@localhost>\r\nDATA\r\n"
            )
            replies = []
            while len(replies) < 4:
                line = f.readline()
                if line[3:4] == b"-":
                    continue
                replies.append(int(line[:3]))
            self.assertEqual(replies, [250, 250, 250, 250])
            self.assertTrue(f.readline().startswith(b"354"))
            s.sendall(raw + b".\r\nQUIT\r\n")
            self.assertTrue(f.readline().startswith(b"250"))
            self.assertTrue(f.readline().startswith(b"250"))
            self.assertTrue(f.readline().startswith(b"221"))


class LmtpConcurrent(ServerTest):
    def test_many_connections_all_delivered(self):
        acked = []
        lock = threading.Lock()

        def worker(n):
            lmtp = self.server.lmtp()
            for i in range(20):
                raw = message(f"w{n}-{i}", f"worker {n} message {i}")
                replies = lmtp_deliver(lmtp, "s@example.org", ["alice@localhost"], raw)
                if replies and replies[0][0] == 250:
                    with lock:
                        acked.append(raw)
            lmtp.quit()

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(acked), 120)
        c = self.server.imap("alice", "alice-pw")
        c.select("INBOX")
        bodies = list(fetch_uid_map(c).values())
        self.assertEqual(len(bodies), 120)
        # Each copy starts with the trace fields skua adds (Return-Path, Delivered-To,
        # Received); the client's message follows unchanged.
        stored = {without_trace_fields(b) for b in bodies}
        self.assertEqual(stored, set(acked))
        c.logout()


if __name__ == "__main__":
    unittest.main()
