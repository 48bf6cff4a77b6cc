use super::*;

fn keys(ks: &[&'static str]) -> Msg {
    Msg::Keys(
        ks.iter()
            .map(|k| Bytes::from_static(k.as_bytes()))
            .collect(),
    )
}

#[test]
fn frames_follow_the_receivers_protocol() {
    let own = Delivery::Invalidate {
        msg: keys(&["k"]),
        redirected: false,
    };
    let bulk = |s: &'static str| Value::BulkString(Bytes::from_static(s.as_bytes()));
    let arr = Value::Array(vec![bulk("k")]);
    assert_eq!(
        own.frame(true, false),
        Some(Value::Push(vec![bulk("invalidate"), arr.clone()]))
    );
    // RESP2 gets nothing on its own connection, even subscribed.
    assert_eq!(own.frame(false, true), None);
    let redirected = Delivery::Invalidate {
        msg: keys(&["k"]),
        redirected: true,
    };
    assert_eq!(
        redirected.frame(false, true),
        Some(Value::Push(vec![
            bulk("message"),
            bulk("__redis__:invalidate"),
            arr
        ]))
    );
    assert_eq!(redirected.frame(false, false), None);
    assert_eq!(Delivery::RedirBroken(7).frame(false, true), None);
    let all = Delivery::Invalidate {
        msg: Msg::All,
        redirected: false,
    };
    assert_eq!(
        all.frame(true, false),
        Some(Value::Push(vec![bulk("invalidate"), Value::Null]))
    );
}

#[test]
fn modes_decide_what_is_remembered() {
    let mut t = Tracking::default();
    let k = Bytes::from_static(b"k");
    t.enable(1, 0, Options::default(), &[]);
    let optin = Options {
        optin: true,
        ..Options::default()
    };
    t.enable(2, 0, optin, &[]);
    let bcast = Options {
        bcast: true,
        ..Options::default()
    };
    t.enable(3, 0, bcast, &[]);
    for id in 1..=3 {
        t.remember(id, false, [&k]);
    }
    assert_eq!(t.totals(), (1, 1, 1));
    t.remember(2, true, [&k]);
    t.remember(1, false, [&k]);
    assert_eq!(t.totals(), (1, 2, 1));
    t.disable(3);
    assert_eq!(t.totals(), (1, 2, 0));
    assert_eq!(t.clients_count(), 2);
    t.disable(1);
    t.disable(2);
    // Ids go lazily, with the key's next invalidation, as in Redis.
    assert!(t.active());
    t.invalidate_key(&k, None, true, &Clients::default());
    assert!(!t.active());
}

#[test]
fn the_key_limit_evicts_down_to_the_limit() {
    let mut t = Tracking::with_max_keys(10);
    t.enable(1, 0, Options::default(), &[]);
    let ks: Vec<Bytes> = (0..50).map(|i| Bytes::from(format!("k{i}"))).collect();
    t.remember(1, false, &ks);
    assert_eq!(t.totals().0, 50);
    t.limit(&Clients::default());
    assert_eq!(t.totals(), (10, 10, 0));
}
