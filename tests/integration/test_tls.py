"""wss:// servers: Python websockets over TLS (echo, closes), SNI, client certificates,
mismatches (plain HTTP or garbage on the TLS port) and a flood of stalled handshakes while
established clients keep working; wisp's own client (examples/wisp-cat) over wss://, and its
refusal of an untrusted CA or a wrong host. The certificates are made here with the openssl
command."""

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import websockets

import wisptest

HOST = wisptest.HOST


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d):
    """A CA, a server certificate for localhost/127.0.0.1, one for other.test, a client one."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=wisp test CA", cwd=d)
    for name, san in (("srv", "DNS:localhost,IP:127.0.0.1"), ("other", "DNS:other.test"),
                      ("client", "DNS:client.test")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
                name + ".csr", "-subj", "/CN=" + name, cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile",
                name + ".ext", cwd=d)


class TLSTestBase(wisptest.ServerTestCase):
    extra = ()

    @classmethod
    def tls_args(cls, p):
        """The server's TLS options, given p(name) -> a file of the PKI."""
        return ("--cert", p("srv.pem"), "--key", p("srv.key"), "--sni-name", "other.test",
                "--sni-cert", p("other.pem"), "--sni-key", p("other.key"))

    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="wisp-tls-")
        make_pki(cls.pki)
        cls.server_args = cls.tls_args(lambda n: os.path.join(cls.pki, n)) + cls.extra
        super().setUpClass()
        cls.tls_port = cls.server.stats()["tls_port"]

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.pki, ignore_errors=True)

    def ctx(self, cert=None):
        c = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.pem"))
        if cert:
            c.load_cert_chain(os.path.join(self.pki, cert + ".pem"),
                              os.path.join(self.pki, cert + ".key"))
        return c

    def url(self, path="/echo", host="localhost"):
        return "wss://%s:%d%s" % (host, self.tls_port, path)


class TLSTest(TLSTestBase):

    def test_echo_over_tls(self):
        async def go():
            async with websockets.connect(self.url(), ssl=self.ctx(), max_size=None,
                                          ping_interval=None) as ws:
                for m in ["tls", b"\x00" * 70000, "z" * (1 << 20), b""]:
                    await ws.send(m)
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 10), m)
                await ws.close(4005, "done")
                self.assertEqual(ws.close_code, 4005)
        wisptest.run(go(), 30)

    def test_alpn_http11(self):
        c = self.ctx()
        c.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection((HOST, self.tls_port), timeout=5) as raw:
            with c.wrap_socket(raw, server_hostname="localhost") as s:
                self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
                self.assertIn(s.version(), ("TLSv1.2", "TLSv1.3"))

    def test_tls12_works(self):
        c = self.ctx()
        c.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection((HOST, self.tls_port), timeout=5) as raw:
            with c.wrap_socket(raw, server_hostname="localhost") as s:
                self.assertEqual(s.version(), "TLSv1.2")

    def test_sni_picks_the_other_certificate(self):
        c = self.ctx()
        with socket.create_connection((HOST, self.tls_port), timeout=5) as raw:
            with c.wrap_socket(raw, server_hostname="other.test") as s:
                cert = s.getpeercert()
                self.assertIn(("DNS", "other.test"), cert["subjectAltName"])

    def test_plain_http_on_the_tls_port_is_closed(self):
        with socket.create_connection((HOST, self.tls_port), timeout=5) as s:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            _, got = wisptest.wait_eof(s, 5)
        self.assertNotIn(b"HTTP/1.1", got)
        self.assertIn("TLS with 127.0.0.1 failed", self.server.stderr())
        self.test_echo_over_tls()  # the listener is unharmed

    def test_garbage_on_the_tls_port_is_closed(self):
        with socket.create_connection((HOST, self.tls_port), timeout=5) as s:
            s.sendall(os.urandom(3000))
            wisptest.wait_eof(s, 5)
        self.test_echo_over_tls()

    def test_clean_close_ends_with_close_notify(self):
        c = self.ctx()
        raw = socket.create_connection((HOST, self.tls_port), timeout=5)
        s = c.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
        try:
            s.sendall(wisptest.upgrade_request("/echo", self.tls_port))
            resp = wisptest.read_response(s, 5, upgrade=True)
            self.assertEqual(resp.status, 101)
            s.sendall(wisptest.close_frame(1000))
            # Read to the end: a TCP close without close_notify raises SSLEOFError here.
            got = resp.rest
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            self.assertEqual(got[:2], b"\x88\x02")  # the server's close frame, then EOF
        finally:
            s.close()

    def cat(self, url, *args):
        cat = os.environ.get("WISP_CAT")
        if not cat:
            self.skipTest("WISP_CAT not set")
        p = subprocess.run([cat, *args, url], input=b"over wss\n", capture_output=True,
                           timeout=20)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def test_wisp_client_over_wss(self):
        ca = os.path.join(self.pki, "ca.pem")
        for host in ("localhost", "127.0.0.1"):
            rc, out, err = self.cat(self.url(host=host), "--ca", ca)
            self.assertEqual((rc, out), (0, "over wss\n"), err)

    def test_wisp_client_refuses_an_untrusted_ca(self):
        rc, out, err = self.cat(self.url())  # the system store does not know our CA
        self.assertEqual(rc, 1)
        self.assertIn("certificate verify failed", err)

    def test_wisp_client_refuses_a_wrong_host(self):
        # The certificate names localhost and 127.0.0.1; the v4-mapped IPv6 form of the same
        # address reaches the same listener but is not a name the certificate holds.
        ca = os.path.join(self.pki, "ca.pem")
        rc, out, err = self.cat("wss://[::ffff:127.0.0.1]:%d/echo" % self.tls_port, "--ca", ca)
        self.assertEqual(rc, 1)
        self.assertIn("certificate verify failed", err)
        self.assertIn("mismatch", err)

    def test_untrusted_client_rejects_the_server(self):
        c = ssl.create_default_context()  # the system store: our CA is unknown there
        with socket.create_connection((HOST, self.tls_port), timeout=5) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError):
                c.wrap_socket(raw, server_hostname="localhost")


class TLSFloodTest(TLSTestBase):
    extra = ("--handshake-ms", 3000, "--max-handshakes", 64)

    def test_stalled_handshakes_do_not_starve_established_clients(self):
        async def go():
            async with websockets.connect(self.url(), ssl=self.ctx(), ping_interval=None) as ws:
                stalled = []
                try:
                    for i in range(1000):
                        s = socket.socket()
                        s.setblocking(False)
                        s.connect_ex((HOST, self.tls_port))
                        stalled.append(s)
                        if i % 100 == 0:  # meanwhile, the established client is served
                            await ws.send("during %d" % i)
                            self.assertEqual(await asyncio.wait_for(ws.recv(), 5),
                                             "during %d" % i)
                    t0 = time.monotonic()
                    for i in range(20):
                        await ws.send("after %d" % i)
                        self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "after %d" % i)
                    self.assertLess(time.monotonic() - t0, 5)
                finally:
                    for s in stalled:
                        s.close()
        wisptest.raise_nofile(4096)
        wisptest.run(go(), 60)
        # Once the flood is gone, new clients get in again.
        self.test_new_client_after()

    def test_stalled_handshake_closed_at_the_deadline(self):
        # The handshake deadline (3 s here) covers TLS and the upgrade together.
        with socket.create_connection((HOST, self.tls_port), timeout=10) as s:
            took, _ = wisptest.wait_eof(s, 8)
        self.assertGreater(took, 2)

    def test_new_client_after(self):
        async def go():
            async with websockets.connect(self.url(), ssl=self.ctx(), ping_interval=None,
                                          open_timeout=10) as ws:
                await ws.send("new")
                self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "new")
        deadline = time.monotonic() + 10
        while True:  # stalled handshakes may still fill the cap until their deadline
            try:
                wisptest.run(go(), 15)
                return
            except (OSError, websockets.InvalidHandshake, asyncio.TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


class ConfigureHookTest(TLSTestBase):
    extra = ("--tls12-only", 1)

    def test_configure_hook_capped_the_version(self):
        with socket.create_connection((HOST, self.tls_port), timeout=5) as raw:
            with self.ctx().wrap_socket(raw, server_hostname="localhost") as s:
                self.assertEqual(s.version(), "TLSv1.2")


class ClientCertTest(TLSTestBase):

    @classmethod
    def tls_args(cls, p):
        return ("--cert", p("srv.pem"), "--key", p("srv.key"), "--client-ca", p("ca.pem"),
                "--require-client-cert", 1)

    def test_client_certificate_required(self):
        async def go(cert):
            async with websockets.connect(self.url(), ssl=self.ctx(cert), ping_interval=None,
                                          open_timeout=5) as ws:
                await ws.send("with cert")
                return await asyncio.wait_for(ws.recv(), 5)
        self.assertEqual(wisptest.run(go("client"), 20), "with cert")
        with self.assertRaises((ssl.SSLError, websockets.ConnectionClosed, OSError,
                                websockets.InvalidHandshake, EOFError)):
            wisptest.run(go(None), 20)


if __name__ == "__main__":
    if not shutil.which("openssl"):
        raise SystemExit(77)
    wisptest.main(budget=110)
