//! DEFLATE under a [`Connection`] on a real socket and a real executor, plain and under TLS,
//! against a client in a plain thread that compresses and inflates with miniz_oxide's
//! streaming functions (a compressor of its own, not the layer's shared one).

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use miniz_oxide::deflate::core::{CompressorOxide, create_comp_flags_from_zip_params};
use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZFlush};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use crate::conn::{Connection, ReadOutcome};
use crate::conn_deflate::INFLATE_OUTPUT_BYTES_MAX;

/// The client's side of the stream: its own compressor and inflater.
struct Peer {
    compressor: Box<CompressorOxide>,
    inflater: Box<InflateState>,
}

impl Peer {
    fn new() -> Peer {
        let flags = create_comp_flags_from_zip_params(6, -15, 0);
        Peer {
            compressor: Box::new(CompressorOxide::new(flags)),
            inflater: InflateState::new_boxed(DataFormat::Raw),
        }
    }

    /// `plaintext` compressed and sync-flushed, as a client sends a command.
    fn compress(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (status, taken) = miniz_oxide::deflate::core::compress_to_output(
            &mut self.compressor,
            plaintext,
            miniz_oxide::deflate::core::TDEFLFlush::Sync,
            |bytes| {
                out.extend_from_slice(bytes);
                true
            },
        );
        assert_eq!(taken, plaintext.len(), "{status:?}");
        out
    }

    /// Reads from `socket` and inflates until `want` plaintext bytes came.
    fn read_plaintext(&mut self, socket: &mut impl Read, want: usize) -> Vec<u8> {
        let mut plaintext = Vec::new();
        let mut compressed = [0u8; 8192];
        let mut inflated = vec![0u8; 64 * 1024];
        while plaintext.len() < want {
            let len = socket.read(&mut compressed).expect("read");
            assert!(len > 0, "closed after {} of {want} bytes", plaintext.len());
            let mut input = &compressed[..len];
            loop {
                let result = inflate(&mut self.inflater, input, &mut inflated, MZFlush::None);
                input = &input[result.bytes_consumed..];
                plaintext.extend_from_slice(&inflated[..result.bytes_written]);
                if result.status.is_err() || (input.is_empty() && result.bytes_written == 0) {
                    break;
                }
            }
        }
        plaintext
    }
}

/// Reads from `connection` until `want` plaintext bytes came; each read at most a read's
/// worth.
async fn read_exactly(connection: &mut Connection, want: usize) -> Vec<u8> {
    let mut seen = Vec::new();
    while seen.len() < want {
        let outcome = connection
            .read_with(Duration::from_secs(10), |bytes| seen.extend_from_slice(bytes))
            .await
            .expect("read");
        match outcome {
            ReadOutcome::Data(len) => assert!(len <= INFLATE_OUTPUT_BYTES_MAX, "{len}"),
            other => panic!("{other:?} after {} of {want}", seen.len()),
        }
    }
    seen
}

fn body(len: usize) -> Vec<u8> {
    // Mail-like text: compresses, but not to nothing.
    let line = b"Received: from mx.example.org by skua; \r\n";
    (0..len).map(|i| line[i % line.len()]).collect()
}

#[test]
fn commands_inflate_and_responses_deflate_over_plain_tcp() {
    let message = body(3_000_000);
    let expected =
        [&b"* 1 FETCH (BODY[] {3000000}\r\n"[..], &message, b")\r\na OK done\r\n"].concat();
    let sent = expected.clone();
    crate::testutil::serve_one(
        move |stream| async move {
            let mut connection = Connection::new(stream, Duration::from_secs(5)).expect("conn");
            connection.write_all(b"c OK DEFLATE active\r\n").await.expect("write");
            connection.start_deflate();
            assert!(connection.is_compressed());
            let command = read_exactly(&mut connection, 18).await;
            assert_eq!(command, b"a FETCH 1 BODY[]\r\n");
            let (head, rest) = sent.split_at(30);
            let (middle, tail) = rest.split_at(1_500_000);
            connection.write_vectored_all(&[head, b"", middle, tail]).await.expect("write");
            let traffic = connection.traffic();
            assert!(traffic.bytes_out < sent.len() as u64 / 5, "{traffic:?}");
            connection.close().await;
        },
        |mut socket| {
            let mut answer = [0u8; 21];
            socket.read_exact(&mut answer).expect("plain answer");
            assert_eq!(&answer, b"c OK DEFLATE active\r\n");
            let mut peer = Peer::new();
            // A command in two flushed pieces, the second sent a byte at a time.
            socket.write_all(&peer.compress(b"a FETCH 1 BODY[]")).expect("write");
            for byte in peer.compress(b"\r\n") {
                socket.write_all(&[byte]).expect("write");
            }
            let got = peer.read_plaintext(&mut socket, expected.len());
            assert_eq!(got.len(), expected.len());
            assert!(got == expected, "bytes differ");
            let mut after = Vec::new();
            socket.read_to_end(&mut after).expect("eof");
            assert!(after.is_empty(), "nothing after the response");
        },
    );
}

#[test]
fn a_bomb_arrives_a_read_at_a_time_and_garbage_is_an_error() {
    let bomb_bytes = 32 * 1024 * 1024;
    crate::testutil::serve_one(
        move |stream| async move {
            let mut connection = Connection::new(stream, Duration::from_secs(5)).expect("conn");
            connection.start_deflate();
            let mut total = 0usize;
            let mut reads = 0usize;
            while total < bomb_bytes {
                let outcome = connection
                    .read_with(Duration::from_secs(10), |bytes| {
                        assert!(bytes.iter().all(|&b| b == b'a'));
                    })
                    .await
                    .expect("read");
                let ReadOutcome::Data(len) = outcome else { panic!("{outcome:?}") };
                assert!(len <= INFLATE_OUTPUT_BYTES_MAX, "{len}");
                let held = connection.deflate().expect("layer").buffered_bytes();
                assert!(held <= 4 * INFLATE_OUTPUT_BYTES_MAX, "{held}");
                total += len;
                reads += 1;
            }
            assert_eq!(total, bomb_bytes);
            assert!(reads >= bomb_bytes / INFLATE_OUTPUT_BYTES_MAX, "{reads}");
            // Then bytes that are no DEFLATE block: the read fails.
            let outcome = connection.read(Duration::from_secs(10)).await;
            assert!(outcome.is_err(), "{outcome:?}");
        },
        |mut socket| {
            let mut peer = Peer::new();
            for _ in 0..bomb_bytes / (1024 * 1024) {
                // The peer's compressor keeps its history: each MiB after the first refers
                // back into the one before, which the server must have kept.
                socket.write_all(&peer.compress(&vec![b'a'; 1024 * 1024])).expect("write");
            }
            // BTYPE 11 (reserved, RFC 1951 §3.2.3).
            socket.write_all(&[0xff, 0xff, 0xff]).expect("write");
            let mut rest = Vec::new();
            let _ = socket.read_to_end(&mut rest);
        },
    );
}

#[allow(deprecated)] // the ring provider; see the TLS config module
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `localhost`: its server config, and a client config that
/// trusts it.
fn tls_configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert = CertificateDer::from(made.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    crate::tls::capture::install(&mut server);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("root");
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

#[test]
fn deflate_runs_under_tls_plaintext_then_deflate_then_tls() {
    let (server_config, client_config) = tls_configs();
    let message = body(1_000_000);
    let expected = [&b"* 1 FETCH (BODY[] {1000000}\r\n"[..], &message, b")\r\n"].concat();
    let sent = expected.clone();
    crate::testutil::serve_one(
        move |stream| async move {
            let mut connection = Connection::new(stream, Duration::from_secs(5)).expect("conn");
            let deadline = Instant::now() + Duration::from_secs(10);
            connection.start_tls(server_config, deadline).await.expect("handshake");
            let command = read_exactly(&mut connection, 12).await;
            assert_eq!(command, b"c COMPRESS\r\n");
            connection.write_all(b"c OK DEFLATE active\r\n").await.expect("write");
            connection.start_deflate();
            let command = read_exactly(&mut connection, 8).await;
            assert_eq!(command, b"a NOOP\r\n");
            connection.write_vectored_all(&[&sent]).await.expect("write");
            // TLS carried compressed bytes: far fewer than the plaintext.
            let traffic = connection.traffic();
            assert!(traffic.bytes_out < sent.len() as u64 / 5, "{traffic:?}");
            connection.close().await;
        },
        |socket| {
            let name = ServerName::try_from("localhost").expect("name");
            let session = rustls::ClientConnection::new(client_config, name).expect("client");
            let mut tls = rustls::StreamOwned::new(session, socket);
            tls.write_all(b"c COMPRESS\r\n").expect("write");
            let mut answer = [0u8; 21];
            tls.read_exact(&mut answer).expect("answer");
            assert_eq!(&answer, b"c OK DEFLATE active\r\n");
            let mut peer = Peer::new();
            tls.write_all(&peer.compress(b"a NOOP\r\n")).expect("write");
            let got = peer.read_plaintext(&mut tls, expected.len());
            assert!(got == expected, "bytes differ ({} of {})", got.len(), expected.len());
        },
    );
}
