//! Lua scripts and functions from the client: [`Script`] (EVALSHA, loading the script on
//! `NOSCRIPT`), [`Client::script_load`], [`Client::fcall`] and [`Client::fcall_ro`].
//!
//! ```no_run
//! # async fn f(client: redcluster::Client) -> Result<(), redcluster::Error> {
//! // A token-checked lock release: delete the key only if it still holds our token.
//! let release = redcluster::Script::new(
//!     "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
//! );
//! let released: i64 = release.key("lock:order:7").arg("token-1").invoke(&client).await?;
//! # let _ = released; Ok(()) }
//! ```
//!
//! Routing: keys decide the node, as for any command (all keys of one call must share a
//! slot). Read-only invocations ([`ScriptInvocation::read_only`], [`Client::fcall_ro`]) use
//! `EVALSHA_RO`/`FCALL_RO`, which the router may send to a replica under
//! [`ReadFrom::ReplicaPreferred`](crate::ReadFrom).

use bytes::{Bytes, BytesMut};

use crate::error::Error;
use crate::types::{FromValue, ToArg};
use crate::Client;

/// A Lua script, named by its SHA-1 as the server names it. Cheap to clone and to keep in a
/// `static`/`OnceLock` for the life of the program.
#[derive(Clone, Debug)]
pub struct Script {
    code: Bytes,
    sha: String,
}

impl Script {
    /// A script with this Lua source (`KEYS[i]` and `ARGV[i]` inside, as for EVAL).
    pub fn new(code: impl Into<Bytes>) -> Script {
        let code = code.into();
        let sha = crate::sha1::sha1_hex(&code);
        Script { code, sha }
    }

    /// The SHA-1 the server caches the script under (`EVALSHA` uses it).
    pub fn sha(&self) -> &str {
        &self.sha
    }

    /// The Lua source.
    pub fn code(&self) -> &[u8] {
        &self.code
    }

    /// Start an invocation with its first key.
    pub fn key<K: ToArg>(&self, key: K) -> ScriptInvocation<'_> {
        self.prepare().key(key)
    }

    /// Start an invocation with its first argument (`ARGV[1]`).
    pub fn arg<A: ToArg>(&self, arg: A) -> ScriptInvocation<'_> {
        self.prepare().arg(arg)
    }

    /// An invocation with no keys or arguments yet.
    pub fn prepare(&self) -> ScriptInvocation<'_> {
        ScriptInvocation {
            script: self,
            keys: Vec::new(),
            args: Vec::new(),
            read_only: false,
        }
    }

    /// Run with no keys or arguments (see [`ScriptInvocation::invoke`]).
    ///
    /// # Errors
    /// As [`ScriptInvocation::invoke`].
    pub async fn invoke<T: FromValue>(&self, client: &Client) -> Result<T, Error> {
        self.prepare().invoke(client).await
    }

    /// Load the script on every node now (`SCRIPT LOAD`), so the first invocations do not
    /// pay for sending the source.
    ///
    /// # Errors
    /// When a node refuses it (a syntax error in the script) or cannot be reached.
    pub async fn load(&self, client: &Client) -> Result<(), Error> {
        client.script_load(&self.code).await.map(|_| ())
    }
}

fn to_bytes<T: ToArg>(v: T) -> Bytes {
    let mut b = BytesMut::new();
    v.write_arg(&mut b);
    b.freeze()
}

/// One call of a [`Script`]: its keys and arguments. Made by [`Script::key`] / [`Script::arg`].
#[derive(Clone, Debug)]
#[must_use = "an invocation does nothing until .invoke(&client).await"]
pub struct ScriptInvocation<'a> {
    script: &'a Script,
    keys: Vec<Bytes>,
    args: Vec<Bytes>,
    read_only: bool,
}

impl ScriptInvocation<'_> {
    /// Add a key (`KEYS[n]`). All keys of one invocation must hash to one slot.
    pub fn key<K: ToArg>(mut self, key: K) -> Self {
        self.keys.push(to_bytes(key));
        self
    }

    /// Add an argument (`ARGV[n]`).
    pub fn arg<A: ToArg>(mut self, arg: A) -> Self {
        self.args.push(to_bytes(arg));
        self
    }

    /// Run as `EVALSHA_RO`: the server refuses writes, and the router may read from a
    /// replica when the client reads from replicas.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Run the script: `EVALSHA` first; when the node answers `NOSCRIPT` (it has not seen the
    /// script, or flushed it), the script did not run, and it is sent once more as `EVAL` to
    /// that same key's node, which loads it there and runs it. A script is never sent again
    /// after a reply that may mean it ran.
    ///
    /// # Errors
    /// The script's error reply (`ERR ... script: ...`), cross-slot keys, or any error of a
    /// command.
    pub async fn invoke<T: FromValue>(self, client: &Client) -> Result<T, Error> {
        let (by_sha, by_code) = if self.read_only {
            ("EVALSHA_RO", "EVAL_RO")
        } else {
            ("EVALSHA", "EVAL")
        };
        match self.send(client, by_sha, self.script.sha.as_bytes()).await {
            Err(e) if e.code() == Some("NOSCRIPT") => {
                let v = self.send(client, by_code, &self.script.code).await?;
                T::from_value(v)
            }
            Ok(v) => T::from_value(v),
            Err(e) => Err(e),
        }
    }

    async fn send(
        &self,
        client: &Client,
        name: &str,
        script: &[u8],
    ) -> Result<crate::Value, Error> {
        client
            .cmd(name)
            .arg(script)
            .arg(self.keys.len())
            .args(&self.keys)
            .args(&self.args)
            .query()
            .await
    }
}

impl Client {
    /// `SCRIPT LOAD` on every node (primaries and replicas, so read-only invocations find it
    /// too): the script's SHA-1.
    ///
    /// # Errors
    /// A compile error in the script, or a node that cannot be reached.
    pub async fn script_load(&self, code: impl ToArg) -> Result<String, Error> {
        self.cmd("SCRIPT").arg("LOAD").arg(code).query().await
    }

    /// `FCALL function numkeys keys... args...`: call a function loaded with
    /// `FUNCTION LOAD`, routed by its keys.
    ///
    /// # Errors
    /// The function's error reply, `ERR Function not found`, cross-slot keys, or any error of
    /// a command.
    pub async fn fcall<T, K, A>(
        &self,
        function: &str,
        keys: impl IntoIterator<Item = K>,
        args: impl IntoIterator<Item = A>,
    ) -> Result<T, Error>
    where
        T: FromValue,
        K: ToArg,
        A: ToArg,
    {
        self.function_call("FCALL", function, keys, args).await
    }

    /// `FCALL_RO`: as [`fcall`](Client::fcall) for functions flagged `no-writes`; the
    /// router may send it to a replica when the client reads from replicas.
    ///
    /// # Errors
    /// As [`fcall`](Client::fcall).
    pub async fn fcall_ro<T, K, A>(
        &self,
        function: &str,
        keys: impl IntoIterator<Item = K>,
        args: impl IntoIterator<Item = A>,
    ) -> Result<T, Error>
    where
        T: FromValue,
        K: ToArg,
        A: ToArg,
    {
        self.function_call("FCALL_RO", function, keys, args).await
    }

    async fn function_call<T, K, A>(
        &self,
        command: &str,
        function: &str,
        keys: impl IntoIterator<Item = K>,
        args: impl IntoIterator<Item = A>,
    ) -> Result<T, Error>
    where
        T: FromValue,
        K: ToArg,
        A: ToArg,
    {
        let keys: Vec<Bytes> = keys.into_iter().map(to_bytes).collect();
        self.cmd(command)
            .arg(function)
            .arg(keys.len())
            .args(&keys)
            .args(args)
            .query()
            .await
    }
}
