//! `[socketmap]`: the listeners of the socketmap service Postfix asks at `RCPT` time
//! (README, "Postfix"; `shard/src/socketmap.rs`).

use serde::Deserialize;
use skua_shard::ServerConfig;

use super::{FileConfig, ListenAddress, unix_sockets};

/// `[socketmap]`: Postfix's look-ups (README, "Postfix").
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SocketmapSection {
    /// Listen addresses: `IP:port` or `unix:/path`; absent or empty: no socketmap service.
    pub listen: Option<Vec<ListenAddress>>,
    /// The mode of the unix sockets, in octal (`"0660"`, the default).
    pub unix_mode: Option<String>,
}

impl FileConfig {
    /// Sets the socketmap listeners of `[socketmap]` on `config`.
    ///
    /// # Errors
    /// `unix_mode` is not an octal mode of at most 0777.
    pub fn apply_socketmap(&self, config: &mut ServerConfig) -> anyhow::Result<()> {
        let section = &self.socketmap;
        config.socketmap_listen = section
            .listen
            .iter()
            .flatten()
            .filter_map(|address| match address {
                ListenAddress::Tcp(address) => Some(*address),
                ListenAddress::Unix(_) => None,
            })
            .collect();
        config.socketmap_unix_listen =
            unix_sockets(section.listen.as_deref(), section.unix_mode.as_deref(), "socketmap")?;
        Ok(())
    }
}
