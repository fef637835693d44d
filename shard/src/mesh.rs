//! Bounded channels between every pair of shards, indexed by [`ShardId`].
//!
//! glommio's `channel_mesh` numbers peers in the order they join, which need not be our shard
//! numbering; building the mesh from `shared_channel`s by hand keeps `senders[i]` pointing at
//! shard `i`. Each directed pair has its own single-producer channel of
//! [`MESH_CHANNEL_CAPACITY`]; a full channel makes the
//! sender wait. Messages are owned data only (`Send`), never `Rc` or borrowed buffers.
//!
//! No deadlock: a shard's receiving loop never waits on a send of its own; it only spawns
//! work, so a sender blocked on a full channel is always eventually drained.

use futures_lite::future;
use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender};

use crate::limits::MESH_CHANNEL_CAPACITY;
use crate::placement::ShardId;

/// One shard's unconnected ends, built on the main thread and moved into the shard's thread.
pub struct MeshEnds<T: Send + 'static> {
    shard: ShardId,
    senders: Vec<Option<shared_channel::SharedSender<T>>>,
    receivers: Vec<Option<shared_channel::SharedReceiver<T>>>,
}

/// Builds the ends for `count` shards; element `i` belongs to shard `i`.
#[must_use]
pub fn build<T: Send + 'static>(count: usize) -> Vec<MeshEnds<T>> {
    let mut ends: Vec<MeshEnds<T>> = (0..count)
        .map(|i| MeshEnds {
            shard: ShardId(u32::try_from(i).expect("shard count is bounded")),
            senders: (0..count).map(|_| None).collect(),
            receivers: (0..count).map(|_| None).collect(),
        })
        .collect();
    for source in 0..count {
        for target in 0..count {
            if source != target {
                let (sender, receiver) = shared_channel::new_bounded(MESH_CHANNEL_CAPACITY);
                ends[source].senders[target] = Some(sender);
                ends[target].receivers[source] = Some(receiver);
            }
        }
    }
    ends
}

impl<T: Send + 'static> MeshEnds<T> {
    /// Connects every end. All shards must call this at about the same time: each connection
    /// completes only when its peer connects too.
    pub async fn connect(self) -> (MeshSenders<T>, Vec<(ShardId, ConnectedReceiver<T>)>) {
        let senders = future::zip(
            join_all(self.senders.into_iter().map(|s| async move {
                match s {
                    Some(s) => Some(s.connect().await),
                    None => None,
                }
            })),
            join_all(self.receivers.into_iter().enumerate().map(|(i, r)| async move {
                match r {
                    Some(r) => {
                        Some((ShardId(u32::try_from(i).expect("bounded")), r.connect().await))
                    }
                    None => None,
                }
            })),
        )
        .await;
        let (senders, receivers) = senders;
        (MeshSenders { shard: self.shard, senders }, receivers.into_iter().flatten().collect())
    }
}

/// Runs futures concurrently on this shard and collects their outputs in order.
async fn join_all<F: std::future::Future + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: 'static,
{
    let tasks: Vec<_> = futures.map(glommio::spawn_local).collect();
    let mut outputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        outputs.push(task.await);
    }
    outputs
}

/// This shard's sending side of the mesh.
pub struct MeshSenders<T: Send + 'static> {
    shard: ShardId,
    senders: Vec<Option<ConnectedSender<T>>>,
}

impl<T: Send + 'static> MeshSenders<T> {
    /// The shard these senders belong to.
    #[must_use]
    pub fn shard(&self) -> ShardId {
        self.shard
    }

    /// Sends `message` to shard `target`, waiting while its channel is full.
    ///
    /// # Errors
    /// Gives the message back when the target is gone (its receiver was dropped) or when
    /// `target` is this shard (local work never goes through the mesh).
    pub async fn send(&self, target: ShardId, message: T) -> Result<(), T> {
        match self.senders.get(target.index()).and_then(Option::as_ref) {
            Some(sender) => sender.send(message).await.map_err(|error| match error {
                glommio::GlommioError::Closed(glommio::ResourceType::Channel(message))
                | glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(message)) => {
                    message
                }
                other => panic!("shared channel send failed unexpectedly: {other}"),
            }),
            None => Err(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three shards each send their id to every other; each receives from exactly the others,
    /// on the channel of the right sender.
    #[test]
    fn every_shard_reaches_every_other_by_id() {
        let count = 3;
        let threads: Vec<_> = build::<(u32, u32)>(count)
            .into_iter()
            .map(|ends| {
                std::thread::spawn(move || {
                    crate::testutil::executor().run(async move {
                        let (senders, receivers) = ends.connect().await;
                        let me = senders.shard();
                        for target in 0..3u32 {
                            let result = senders.send(ShardId(target), (me.0, target)).await;
                            assert_eq!(result.is_ok(), target != me.0, "no channel to itself");
                        }
                        let mut heard = Vec::new();
                        for (peer, receiver) in receivers {
                            let (from, to) = receiver.recv().await.expect("a message");
                            assert_eq!((from, to), (peer.0, me.0));
                            heard.push(from);
                        }
                        heard.sort_unstable();
                        heard
                    })
                })
            })
            .collect();
        for (index, thread) in threads.into_iter().enumerate() {
            let heard = thread.join().expect("shard thread");
            let expected: Vec<u32> = (0..3).filter(|&i| i as usize != index).collect();
            assert_eq!(heard, expected);
        }
    }
}
