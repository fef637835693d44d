//! Helpers for unit tests that need a glommio executor.

use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};

/// io_uring memory for test executors: small, since tests run in parallel and locked memory
/// is scarce.
const TEST_IO_MEMORY_BYTES: usize = 128 * 1024;

/// A fresh unpinned executor for one test.
pub(crate) fn executor() -> LocalExecutor {
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(TEST_IO_MEMORY_BYTES)
        .make()
        .expect("test executor (io_uring) starts")
}

/// Runs `server` on a fresh executor (its own thread) over the one connection it accepts on a
/// loopback port, while `client` runs in the calling thread on the connecting socket.
pub(crate) fn serve_one<S, F>(server: S, client: impl FnOnce(std::net::TcpStream))
where
    S: FnOnce(glommio::net::TcpStream) -> F + Send + 'static,
    F: std::future::Future<Output = ()> + 'static,
{
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let shard = std::thread::spawn(move || {
        executor().run(async move {
            let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            port_tx.send(listener.local_addr().expect("addr").port()).expect("port");
            let stream = listener.accept().await.expect("accept");
            server(stream).await;
        });
    });
    let port = port_rx.recv().expect("port");
    let socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    client(socket);
    shard.join().expect("server side");
}
