//! Reaching clusters the way production does: `redis://` URLs with named users, TLS,
//! hostname endpoints, address maps and rotating credentials.

use redcluster::server::TestCluster;
use redcluster::{Client, ReadFrom};

/// The seeds of `cluster` as the host list of a URL.
fn url_hosts(cluster: &TestCluster) -> String {
    let seeds: Vec<String> = cluster.seeds().iter().map(|a| a.to_string()).collect();
    seeds.join(",")
}

#[tokio::test]
async fn url_with_a_named_user_and_options_reaches_the_cluster() {
    let cluster = TestCluster::builder()
        .primaries(3)
        .replicas_per_primary(1)
        .requirepass("default-pw")
        .user("app", "p@ss:w/rd")
        .start()
        .await
        .unwrap();
    let url = format!(
        "redis://app:p%40ss%3Aw%2Frd@{}?read_from=replica_preferred&protocol=3\
         &client_name=url-test&request_timeout_ms=3000",
        url_hosts(&cluster)
    );
    let client = Client::from_url(&url).unwrap().build().await.unwrap();
    client.set("url:k", "v").await.unwrap();
    let v: Option<String> = client.get("url:k").await.unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    let who: String = client.cmd("CLIENT").arg("GETNAME").query().await.unwrap();
    assert_eq!(who, "url-test");

    // The same cluster with the wrong password: an auth error naming nobody's password.
    let url = format!("redis://app:wrong-pw@{}", url_hosts(&cluster));
    let e = Client::from_url(&url).unwrap().build().await.unwrap_err();
    assert!(!e.to_string().contains("wrong-pw"), "{e}");

    // And the builder form: options after the URL refine it.
    let client = Client::builder(["unused:1"])
        .url(&format!("valkey://:default-pw@{}", url_hosts(&cluster)))
        .unwrap()
        .read_from(ReadFrom::Primary)
        .build()
        .await
        .unwrap();
    client.set("url:k2", 1).await.unwrap();
}
