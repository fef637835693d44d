//! `[metrics]`: the Prometheus endpoint's listeners (README, "Metrics";
//! `shard/src/metrics_http.rs`).

use std::net::SocketAddr;

use serde::Deserialize;
use skua_shard::ServerConfig;

use super::FileConfig;

/// `[metrics]`: the Prometheus endpoint (plain HTTP, `GET /metrics`), off by default.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// `IP:port` addresses, served by shard 0; absent or empty: no endpoint. The endpoint has
    /// no authentication: bind it to loopback or a private network.
    pub listen: Option<Vec<SocketAddr>>,
}

impl FileConfig {
    /// Sets the endpoint's addresses of `[metrics]` on `config`.
    ///
    /// # Errors
    /// An address given twice (the second bind would fail at start-up with a less clear
    /// error).
    pub fn apply_metrics(&self, config: &mut ServerConfig) -> anyhow::Result<()> {
        let listen = self.metrics.listen.clone().unwrap_or_default();
        for (index, address) in listen.iter().enumerate() {
            if listen[..index].contains(address) {
                anyhow::bail!("metrics.listen: {address} is listed twice");
            }
        }
        config.metrics_listen = listen;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_off_by_default_and_listen_where_asked() {
        let mut config = ServerConfig::default();
        FileConfig::default().apply_metrics(&mut config).expect("valid");
        assert!(config.metrics_listen.is_empty(), "no endpoint unless asked");
        let text = "[metrics]\nlisten = [\"127.0.0.1:9100\", \"[::1]:9100\"]\n";
        let file: FileConfig = toml::from_str(text).expect("parses");
        file.apply_metrics(&mut config).expect("valid");
        let expected: Vec<SocketAddr> =
            vec!["127.0.0.1:9100".parse().expect("v4"), "[::1]:9100".parse().expect("v6")];
        assert_eq!(config.metrics_listen, expected);
        let twice = "[metrics]\nlisten = [\"127.0.0.1:9100\", \"127.0.0.1:9100\"]\n";
        let file: FileConfig = toml::from_str(twice).expect("parses");
        assert!(file.apply_metrics(&mut ServerConfig::default()).is_err());
        for bad in ["listen = [\"unix:/run/m.sock\"]", "listen = [\"nowhere\"]", "port = 1"] {
            assert!(toml::from_str::<FileConfig>(&format!("[metrics]\n{bad}\n")).is_err(), "{bad}");
        }
    }
}
