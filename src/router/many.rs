//! Requests made of several commands: pipelines (one deadline for all), multi-key commands
//! split by slot, and keyless commands fanned out to every primary or node.

use std::time::Duration;

use super::{fanout, route, split, Route, Router, Target, Trail};
use crate::error::{Error, ErrorKind};
use crate::resp::Value;
use crate::types::Args;

impl Router {
    /// The deadline for a request made of commands routed as `routes`: `request_timeout`,
    /// plus the longest time any of them may block on the server; `None` when one blocks
    /// with no timeout.
    fn deadline_for<'a>(
        &self,
        routes: impl IntoIterator<Item = &'a Result<Route, Error>>,
    ) -> Option<Duration> {
        let mut extra = Duration::ZERO;
        for r in routes.into_iter().flatten() {
            match r.block {
                route::Block::No => {}
                route::Block::For(d) => extra = extra.max(d),
                route::Block::Forever => return None,
            }
        }
        Some(self.inner.config.request_timeout.saturating_add(extra))
    }

    /// One command (already routed) to completion with no deadline of its own (the caller
    /// holds it).
    async fn execute_untimed(
        &self,
        args: &Args,
        routed: Result<Route, Error>,
        trail: &mut Trail,
    ) -> Result<Value, Error> {
        let route = match routed {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::CrossSlot => match split::plan(args) {
                Some(plan) => {
                    // Its parts keep their own trails: if the outer deadline cuts this
                    // off, assume some part was sent.
                    trail.sent = true;
                    return self.execute_split(plan).await;
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        if let Some((targets, how)) = route.fanout {
            trail.sent = true;
            return self.fan_out(args, route, targets, how).await;
        }
        self.inner
            .run_on(args, route, Target::Slot, trail, route.exclusive)
            .await
    }

    /// Run a pipeline: every command routed, redirected and retried on its own, all issued
    /// at once (commands for the same node share its connection's next write), under one
    /// deadline for the whole pipeline. Outcomes in the caller's order; a command still
    /// unanswered at the deadline gets a timeout error, the others keep their replies.
    pub(crate) async fn execute_many(&self, commands: &[Args]) -> Vec<Result<Value, Error>> {
        let n = commands.len();
        let mut results: Vec<Option<Result<Value, Error>>> = vec![None; n];
        let mut trails: Vec<Trail> = vec![Trail::default(); n];
        let routes: Vec<Result<Route, Error>> =
            commands.iter().map(|c| self.inner.route(c)).collect();
        let deadline = self.deadline_for(&routes);
        {
            let runs = commands
                .iter()
                .zip(routes)
                .zip(results.iter_mut())
                .zip(trails.iter_mut())
                .map(|(((c, routed), slot), last)| async move {
                    let r = self.execute_untimed(c, routed, last).await;
                    *slot = Some(r);
                });
            let all = futures::future::join_all(runs);
            match deadline {
                Some(d) => {
                    let _ = tokio::time::timeout(d, all).await;
                }
                None => {
                    all.await;
                }
            }
        }
        results
            .into_iter()
            .zip(trails)
            .map(|(r, last)| {
                r.unwrap_or_else(|| {
                    Err(self.inner.deadline_error(
                        ErrorKind::Timeout,
                        "pipelined request",
                        deadline.unwrap_or(Duration::MAX),
                        last,
                    ))
                })
            })
            .collect()
    }

    /// Run the parts of a split multi-key command concurrently (each routed, redirected and
    /// retried on its own) under one deadline, and merge their replies.
    pub(super) async fn execute_split(&self, plan: split::Plan) -> Result<Value, Error> {
        let mut trails: Vec<Trail> = vec![Trail::default(); plan.parts.len()];
        let runs = plan
            .parts
            .iter()
            .zip(trails.iter_mut())
            .map(|(part, trail)| {
                let route = Route {
                    slot: Some(part.slot),
                    ..Route::keyless(plan.readonly)
                };
                self.inner.run(&part.args, route, Target::Slot, trail)
            });
        let timeout = self.inner.config.request_timeout;
        match tokio::time::timeout(timeout, futures::future::join_all(runs)).await {
            Ok(replies) => split::merge(&plan, replies),
            Err(_) => Err(self.inner.deadline_error(
                ErrorKind::Timeout,
                "split multi-key request",
                timeout,
                Trail {
                    sent: trails.iter().any(|t| t.sent),
                    last_error: trails.into_iter().find_map(|t| t.last_error),
                    ..Trail::default()
                },
            )),
        }
    }

    /// Addresses of every primary, and of every replica too with `all_nodes`.
    fn node_addrs(&self, all_nodes: bool) -> Vec<String> {
        let topo = self.inner.topology.load();
        let mut addrs: Vec<String> = topo
            .shards()
            .iter()
            .map(|s| s.primary.addr.clone())
            .collect();
        if all_nodes {
            addrs.extend(
                topo.shards()
                    .iter()
                    .flat_map(|s| s.replicas.iter().map(|r| r.addr.clone())),
            );
        }
        addrs
    }

    /// Run `args` on each of `addrs` concurrently under one deadline; outcomes in order (a
    /// node still unanswered at the deadline gets a timeout error naming its last error).
    async fn run_on_each(
        &self,
        args: &Args,
        route: Route,
        addrs: &[String],
    ) -> Vec<Result<Value, Error>> {
        let n = addrs.len();
        let mut results: Vec<Option<Result<Value, Error>>> = vec![None; n];
        let mut trails: Vec<Trail> = vec![Trail::default(); n];
        let timeout = self.inner.config.request_timeout;
        {
            let runs = addrs
                .iter()
                .zip(results.iter_mut())
                .zip(trails.iter_mut())
                .map(|((addr, slot), last)| async move {
                    let home = Target::Addr {
                        addr: addr.clone(),
                        asking: false,
                    };
                    *slot = Some(self.inner.run(args, route, home, last).await);
                });
            let _ = tokio::time::timeout(timeout, futures::future::join_all(runs)).await;
        }
        results
            .into_iter()
            .zip(trails)
            .zip(addrs)
            .map(|((r, last), addr)| {
                r.unwrap_or_else(|| {
                    Err(self.inner.deadline_error(
                        ErrorKind::Timeout,
                        &format!("request to {addr}"),
                        timeout,
                        last,
                    ))
                })
            })
            .collect()
    }

    /// Send a keyless cluster-wide command to every primary (or node) and merge the replies.
    pub(super) async fn fan_out(
        &self,
        args: &Args,
        route: Route,
        targets: crate::command::Targets,
        how: crate::command::FanoutMerge,
    ) -> Result<Value, Error> {
        let addrs = self.node_addrs(targets == crate::command::Targets::AllNodes);
        if addrs.is_empty() {
            return Err(Error::new(ErrorKind::ClusterDown, "no node known"));
        }
        fanout::merge(self.run_on_each(args, route, &addrs).await, how)
    }

    /// Send `args` to every primary (or every node) and return each node's own reply, by
    /// address: for per-node commands such as INFO, PING, CONFIG GET, SLOWLOG GET.
    pub(crate) async fn execute_per_node(
        &self,
        args: &Args,
        all_nodes: bool,
    ) -> Vec<(String, Result<Value, Error>)> {
        let addrs = self.node_addrs(all_nodes);
        let route = match self.inner.route(args) {
            Ok(r) => Route {
                slot: r.slot,
                ..Route::keyless(r.readonly)
            },
            Err(e) => return addrs.into_iter().map(|a| (a, Err(e.clone()))).collect(),
        };
        let replies = self.run_on_each(args, route, &addrs).await;
        addrs.into_iter().zip(replies).collect()
    }
}
