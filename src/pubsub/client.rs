//! The [`Client`] methods that start a subscription or publish.

use std::collections::HashSet;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::task::{run, Task};
use super::{bytes_of, Subscription};
use crate::client::Client;
use crate::error::Error;
use crate::types::ToArg;

impl Client {
    /// `SUBSCRIBE` to `channels` (messages sent with `PUBLISH`, from any node).
    ///
    /// # Errors
    /// None yet: connection trouble is retried in the background and reported as
    /// [`MessageKind::Gap`](super::MessageKind::Gap) events. The `Result` leaves room for validation.
    pub async fn subscribe<I>(&self, channels: I) -> Result<Subscription, Error>
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        Ok(self.subscription(bytes_of(channels), Vec::new(), Vec::new()))
    }

    /// `PSUBSCRIBE` to `patterns`.
    ///
    /// # Errors
    /// As [`subscribe`](Client::subscribe).
    pub async fn psubscribe<I>(&self, patterns: I) -> Result<Subscription, Error>
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        Ok(self.subscription(Vec::new(), bytes_of(patterns), Vec::new()))
    }

    /// `SSUBSCRIBE` to shard `channels` (messages sent with `SPUBLISH`), each on the primary
    /// that owns its slot, following the slot when it moves.
    ///
    /// # Errors
    /// As [`subscribe`](Client::subscribe).
    pub async fn ssubscribe<I>(&self, channels: I) -> Result<Subscription, Error>
    where
        I: IntoIterator,
        I::Item: ToArg,
    {
        Ok(self.subscription(Vec::new(), Vec::new(), bytes_of(channels)))
    }

    /// A subscription to any mix of channels, patterns and shard channels.
    pub fn subscription(
        &self,
        channels: Vec<Bytes>,
        patterns: Vec<Bytes>,
        shard_channels: Vec<Bytes>,
    ) -> Subscription {
        let (tx, rx) = mpsc::unbounded_channel();
        let (changes, changes_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(Task::new(
            self.clone(),
            tx,
            changes_rx,
            channels,
            patterns,
            shard_channels,
        )));
        Subscription {
            rx,
            task,
            changes,
            timeout: self.router_ref().request_timeout(),
            dropped: HashSet::new(),
        }
    }

    /// `PUBLISH channel message`: how many subscribers (on the node that took it) got it.
    pub async fn publish<C: ToArg, M: ToArg>(&self, channel: C, message: M) -> Result<i64, Error> {
        self.cmd("PUBLISH").arg(channel).arg(message).query().await
    }

    /// `SPUBLISH shardchannel message`, routed to the channel's slot owner.
    pub async fn spublish<C: ToArg, M: ToArg>(&self, channel: C, message: M) -> Result<i64, Error> {
        self.cmd("SPUBLISH").arg(channel).arg(message).query().await
    }
}
