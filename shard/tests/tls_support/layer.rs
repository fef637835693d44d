//! skua's `TlsLayer` joined to a rustls client by an in-memory pipe: what the layer writes goes
//! to the client's `read_tls`, what the client writes to the layer's `receive`.

use std::io::{IoSlice, Read, Write};

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use skua_shard::conn_tls::TlsLayer;

/// Handshake rounds after which a handshake that has not finished is a test failure.
const HANDSHAKE_ROUNDS_MAX: usize = 16;

pub struct LayerPair {
    pub client: ClientConnection,
    pub layer: Box<TlsLayer>,
    /// Plaintext the client decrypted and the test has not read yet.
    pub received: Vec<u8>,
}

impl LayerPair {
    /// A client for `name` (a DNS name for SNI, or an IP address: no SNI) and a fresh layer.
    pub fn new(
        client: &Arc<ClientConfig>,
        server: Arc<rustls::ServerConfig>,
        name: &str,
    ) -> LayerPair {
        let name = ServerName::try_from(name.to_owned()).expect("server name");
        LayerPair {
            client: ClientConnection::new(client.clone(), name).expect("client"),
            layer: Box::new(TlsLayer::new(server).expect("layer")),
            received: Vec::new(),
        }
    }

    /// A pair whose handshake is done.
    pub fn connected(
        client: &Arc<ClientConfig>,
        server: Arc<rustls::ServerConfig>,
        name: &str,
    ) -> LayerPair {
        let mut pair = LayerPair::new(client, server, name);
        pair.handshake();
        pair
    }

    /// Runs the handshake to its end (and hands the client the tickets after it).
    pub fn handshake(&mut self) {
        for _ in 0..HANDSHAKE_ROUNDS_MAX {
            self.deliver_to_server().expect("server accepts the client's records");
            self.deliver_to_client().expect("client accepts the server's records");
            if !self.layer.is_handshaking() && !self.client.is_handshaking() {
                return;
            }
        }
        panic!("handshake did not finish in {HANDSHAKE_ROUNDS_MAX} rounds");
    }

    /// What the client has to send, as bytes.
    pub fn client_records(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        while self.client.wants_write() {
            self.client.write_tls(&mut bytes).expect("to memory");
        }
        bytes
    }

    /// Moves the client's records to the layer in one piece.
    pub fn deliver_to_server(&mut self) -> std::io::Result<()> {
        let bytes = self.client_records();
        self.layer.receive(&bytes)
    }

    /// What the layer has to send, as bytes.
    pub fn server_records(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        while self.layer.wants_write() {
            self.layer.write_records(&mut bytes).expect("to memory");
        }
        bytes
    }

    /// Moves the layer's records to the client; returns the bytes moved.
    pub fn deliver_to_client(&mut self) -> Result<Vec<u8>, rustls::Error> {
        let bytes = self.server_records();
        let mut slice = &bytes[..];
        while !slice.is_empty() {
            self.client.read_tls(&mut slice).expect("from memory");
            self.client.process_new_packets()?;
            // Read as it comes: rustls's client holds only so much plaintext.
            let mut chunk = [0u8; 4096];
            loop {
                match self.client.reader().read(&mut chunk) {
                    Ok(0) => break,
                    Ok(len) => self.received.extend_from_slice(&chunk[..len]),
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(error) => panic!("client read: {error}"),
                }
            }
        }
        Ok(bytes)
    }

    /// The client sends `bytes`; returns the plaintext the layer then hands over.
    pub fn client_says(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.client.writer().write_all(bytes).expect("client write");
        self.deliver_to_server().expect("server accepts the client's records");
        self.drain()
    }

    /// The plaintext waiting in the layer.
    pub fn drain(&mut self) -> Vec<u8> {
        let mut seen = Vec::new();
        self.layer.drain_plaintext(&mut |bytes: &[u8]| seen.extend_from_slice(bytes)).expect("d");
        seen
    }

    /// The layer sends `slices` (all of them, flushing between batches); returns the records.
    pub fn server_says(&mut self, slices: &[&[u8]]) -> Vec<u8> {
        let mut records = Vec::new();
        let mut index = 0;
        let mut offset = 0;
        while index < slices.len() {
            let mut iovecs = vec![IoSlice::new(&slices[index][offset..])];
            iovecs.extend(slices[index + 1..].iter().map(|slice| IoSlice::new(slice)));
            let mut taken = self.layer.encrypt(&iovecs).expect("encrypt");
            assert!(taken > 0, "the layer takes something when no record waits");
            while taken > 0 {
                let left = slices[index].len() - offset;
                if taken >= left {
                    taken -= left;
                    index += 1;
                    offset = 0;
                } else {
                    offset += taken;
                    taken = 0;
                }
            }
            records.extend(self.deliver_to_client().expect("client accepts the server's records"));
        }
        records
    }

    /// Takes `len` plaintext bytes the client received.
    pub fn client_reads(&mut self, len: usize) -> Vec<u8> {
        assert!(
            self.received.len() >= len,
            "{} bytes received, {len} expected",
            self.received.len()
        );
        self.received.drain(..len).collect()
    }
}

/// The (content type, length) of each record in `bytes`, which holds whole records.
pub fn records(mut bytes: &[u8]) -> Vec<(u8, usize)> {
    let mut found = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 5, "a whole record header");
        let len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        found.push((bytes[0], len));
        bytes = &bytes[5 + len..];
    }
    found
}
