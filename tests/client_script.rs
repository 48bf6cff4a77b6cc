//! The client's script helpers against the bundled cluster: `Script` (EVALSHA, one EVAL on
//! NOSCRIPT, never a second run), `Client::script_load`, `fcall`/`fcall_ro`, read-only
//! invocations under ReplicaPreferred.

mod support;

use redcluster::{Client, Nodes, ReadFrom, Script};
use support::wait::eventually;

const COUNTER: &str = "return redis.call('incr', KEYS[1])";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_loads_itself_once_and_never_runs_twice() {
    let cluster = support::bundled::cluster().await;
    let client = Client::builder(cluster.seeds()).build().await.unwrap();
    let script = Script::new(COUNTER);
    assert_eq!(script.sha().len(), 40);
    // No node knows it: EVALSHA answers NOSCRIPT, the script goes once as EVAL.
    let n: i64 = script.key("cnt:{a}").invoke(&client).await.unwrap();
    assert_eq!(n, 1, "the script ran exactly once");
    let n: i64 = script.key("cnt:{a}").invoke(&client).await.unwrap();
    assert_eq!(n, 2);
    // The node serving the key now has it cached: EVALSHA alone does the job.
    let sha = script.sha().to_string();
    let known: i64 = client
        .cmd("EVALSHA")
        .arg(&sha)
        .arg(1)
        .arg("cnt:{a}")
        .query()
        .await
        .unwrap();
    assert_eq!(known, 3);
    // A script error is the script's own reply, not a retry.
    let failing = Script::new("return redis.call('incr', KEYS[1], 'extra')");
    let err = failing
        .key("cnt:{a}")
        .invoke::<i64>(&client)
        .await
        .unwrap_err();
    assert!(
        err.detail()
            .contains("Wrong number of args calling Redis command from script"),
        "{err}"
    );
    let n: i64 = client.get("cnt:{a}").await.unwrap();
    assert_eq!(n, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_load_reaches_every_node_and_read_only_runs_on_replicas() {
    let cluster = support::bundled::cluster().await;
    let client = Client::builder(cluster.seeds())
        .read_from(ReadFrom::ReplicaPreferred)
        .build()
        .await
        .unwrap();
    let reader = Script::new("return redis.call('get', KEYS[1])");
    let sha = client.script_load(reader.code()).await.unwrap();
    assert_eq!(sha, reader.sha());
    let exists = client
        .cmd("SCRIPT")
        .arg("EXISTS")
        .arg(&sha)
        .query_per_node::<Vec<i64>>(Nodes::All)
        .await;
    assert_eq!(exists.len(), 6);
    for (addr, r) in exists {
        assert_eq!(r.unwrap(), vec![1], "{addr} has the script");
    }
    client.set("ro:{b}", "v").await.unwrap();
    eventually("a replica read sees the write", || {
        let (client, reader) = (client.clone(), reader.clone());
        async move {
            let v: Option<String> = reader
                .key("ro:{b}")
                .read_only()
                .invoke(&client)
                .await
                .unwrap();
            v.as_deref() == Some("v")
        }
    })
    .await;
    // A read-only invocation may not write.
    let err = Script::new(COUNTER)
        .key("ro:{b}")
        .read_only()
        .invoke::<i64>(&client)
        .await
        .unwrap_err();
    assert!(
        err.detail()
            .contains("Write commands are not allowed from read-only scripts."),
        "{err}"
    );
}

const LIB: &str = "#!lua name=clientlib\n\
redis.register_function('add', function(keys, args) return redis.call('incrby', keys[1], args[1]) end)\n\
redis.register_function{function_name='peek', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcall_and_fcall_ro_with_keys_and_args() {
    let cluster = support::bundled::cluster().await;
    let client = Client::builder(cluster.seeds())
        .read_from(ReadFrom::ReplicaPreferred)
        .build()
        .await
        .unwrap();
    for (addr, r) in client
        .cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIB)
        .query_per_node::<String>(Nodes::Primaries)
        .await
    {
        assert_eq!(r.unwrap(), "clientlib", "{addr}");
    }
    let n: i64 = client.fcall("add", ["f:{c}"], [5]).await.unwrap();
    assert_eq!(n, 5);
    let n: i64 = client.fcall("add", ["f:{c}"], [2]).await.unwrap();
    assert_eq!(n, 7);
    eventually(
        "fcall_ro reads the value (from a replica once synced)",
        || {
            let client = client.clone();
            async move {
                let v: Result<Option<String>, _> =
                    client.fcall_ro("peek", ["f:{c}"], [""; 0]).await;
                matches!(v, Ok(Some(ref s)) if s == "7")
            }
        },
    )
    .await;
    let err = client
        .fcall_ro::<i64, _, _>("add", ["f:{c}"], [1])
        .await
        .unwrap_err();
    assert!(err.detail().contains("write flag"), "{err}");
    let err = client
        .fcall::<i64, _, _>("missing", [""; 0], [""; 0])
        .await
        .unwrap_err();
    assert!(err.detail().contains("Function not found"), "{err}");
}
