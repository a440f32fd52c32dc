//! The fault proxy against the real kube-apiserver + etcd: requests and watches pass through it unchanged, a cut
//! is an outage for requests and watches alike until restored, and each injected status reaches a kube client as
//! the apiserver's own error would, exactly as many times as asked.
//!
//! Every wait is bounded by a timeout; no sleeps.

// Fixture helpers may unwrap too: a panic is the test failure we want (clippy only exempts #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{Stream, StreamExt as _};
use http::Method;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams},
};
use kube_testenv::{Fault, FaultProxy, TestContext};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// Test logs (RUST_LOG, else `kube_testenv=debug`).
fn logs() {
    kube_testenv::test_logs("kube_testenv=debug");
}

fn config_map(name: &str, version: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"version": version}}))
        .unwrap()
}

/// A test's namespace, a proxy in front of the apiserver, and ConfigMap APIs through it and direct.
struct World {
    ctx: TestContext,
    proxy: FaultProxy,
    /// Through the proxy, with kube's default config (it retries 429/503/504 itself).
    via_proxy: Api<ConfigMap>,
    /// Straight to the apiserver, to change things behind the proxy's back.
    direct: Api<ConfigMap>,
}

impl World {
    async fn start(test: &str) -> Option<Self> {
        logs();
        let ctx = kube_testenv::test_context(test).await?;
        let proxy = FaultProxy::start(ctx.env).await.unwrap();
        let via_proxy = Api::namespaced(proxy.admin_client().await.unwrap(), &ctx.namespace);
        let direct = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        Some(Self {
            ctx,
            proxy,
            via_proxy,
            direct,
        })
    }

    /// A client through the proxy with kube's own retries off, so every faulted answer reaches the caller.
    async fn no_retry(&self) -> Client {
        let mut config = self.proxy.config(self.ctx.env.admin_token()).await.unwrap();
        config.default_retry = false;
        Client::try_from(config).unwrap()
    }

    /// A raw watch (no re-list, no retry) on one ConfigMap through the proxy, from `rv`.
    async fn watch(
        &self,
        name: &str,
        rv: &str,
    ) -> impl Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin + use<> {
        let wp = WatchParams::default().fields(&format!("metadata.name={name}"));
        self.via_proxy.watch(&wp, rv).await.unwrap().boxed()
    }

    async fn bump(&self, name: &str, version: &str) {
        let patch = Patch::Merge(json!({"data": {"version": version}}));
        self.direct
            .patch(name, &PatchParams::default(), &patch)
            .await
            .unwrap();
    }
}

/// The next watch event carrying a ConfigMap at `version`.
async fn next_version(
    events: &mut (impl Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
    version: &str,
) {
    tokio::time::timeout(WAIT, async {
        while let Some(event) = events.next().await {
            if let WatchEvent::Added(cm) | WatchEvent::Modified(cm) = event.unwrap()
                && cm.data.as_ref().is_some_and(|d| d["version"] == version)
            {
                return;
            }
        }
        panic!("the watch ended before version {version}");
    })
    .await
    .expect("the watch delivered the change in time");
}

fn expect_api_error<T: std::fmt::Debug>(result: kube::Result<T>, code: u16, reason: &str) {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(
                (status.code, status.reason.as_str()),
                (code, reason),
                "{status:?}"
            );
            assert!(status.message.contains(reason), "{}", status.message);
        }
        other => panic!("expected the apiserver error {code} {reason}, got {other:?}"),
    }
}

#[tokio::test]
async fn requests_and_watches_pass_through() {
    let Some(w) = World::start("fault-proxy-pass").await else {
        return;
    };
    assert!(w.proxy.url().starts_with("http://127.0.0.1:"));
    let listed = w.via_proxy.list(&ListParams::default()).await.unwrap();
    assert!(listed.items.is_empty());
    let created = w
        .via_proxy
        .create(&PostParams::default(), &config_map("cm", "1"))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert_eq!(
        w.direct.get("cm").await.unwrap().metadata.uid,
        created.metadata.uid
    );

    // The watch streams through: a change made directly shows up as an event.
    let rv = created.metadata.resource_version.unwrap();
    let mut events = w.watch("cm", &rv).await;
    w.bump("cm", "2").await;
    next_version(&mut events, "2").await;

    let ns_path = format!("/namespaces/{}/configmaps", w.ctx.namespace);
    assert_eq!(w.proxy.seen(Some(Method::POST), &ns_path), 1);
    assert_eq!(w.proxy.seen(Some(Method::GET), &ns_path), 2);
    assert_eq!(w.proxy.seen(None, "watch=true"), 1);
    assert_eq!(w.proxy.seen(Some(Method::DELETE), ""), 0);
    assert_eq!(w.proxy.requests().len(), 3);

    // The bearer token goes through as sent: the apiserver itself rejects a wrong one.
    let stranger: Api<ConfigMap> = Api::namespaced(
        w.proxy.client("not-a-token").await.unwrap(),
        &w.ctx.namespace,
    );
    expect_api_error(
        stranger.list(&ListParams::default()).await,
        401,
        "Unauthorized",
    );
}

#[tokio::test]
async fn a_cut_is_an_outage_for_requests_and_watches_until_restored() {
    let Some(w) = World::start("fault-proxy-cut").await else {
        return;
    };
    let created = w
        .via_proxy
        .create(&PostParams::default(), &config_map("cm", "1"))
        .await
        .unwrap();
    let mut events = w
        .watch("cm", &created.metadata.resource_version.unwrap())
        .await;
    w.bump("cm", "2").await;
    next_version(&mut events, "2").await;

    w.proxy.cut().await;
    assert!(w.proxy.is_cut());
    // The running watch ends (an error or the end of the stream), with no event.
    let ended = tokio::time::timeout(WAIT, events.next())
        .await
        .expect("the watch ended at the cut");
    assert!(matches!(ended, None | Some(Err(_))), "{ended:?}");

    let posts = w.proxy.seen(Some(Method::POST), "/configmaps");
    let list = w.via_proxy.list(&ListParams::default()).await;
    assert!(
        matches!(&list, Err(e) if !matches!(e, kube::Error::Api(_))),
        "{list:?}"
    );
    let create = w
        .via_proxy
        .create(&PostParams::default(), &config_map("during", "1"))
        .await;
    assert!(create.is_err(), "{create:?}");
    let watch = w.via_proxy.watch(&WatchParams::default(), "0").await;
    assert!(watch.is_err());
    // Nothing reached the proxy, let alone the apiserver; the clients did knock.
    assert_eq!(w.proxy.seen(Some(Method::POST), "/configmaps"), posts);
    assert!(w.direct.get_opt("during").await.unwrap().is_none());
    assert!(w.proxy.dropped_connections() >= 1);

    w.proxy.restore();
    assert!(!w.proxy.is_cut());
    assert_eq!(
        w.via_proxy
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let rv = w
        .via_proxy
        .get("cm")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = w.watch("cm", &rv).await;
    w.bump("cm", "3").await;
    next_version(&mut events, "3").await;
}

#[tokio::test]
async fn each_injected_status_reaches_the_client_exactly_times_times() {
    let Some(w) = World::start("fault-proxy-inject").await else {
        return;
    };
    let api: Api<ConfigMap> = Api::namespaced(w.no_retry().await, &w.ctx.namespace);
    let pp = PostParams::default();
    api.create(&pp, &config_map("cm", "1")).await.unwrap();
    let merge = |v: &str| Patch::Merge(json!({"data": {"version": v}}));
    let cases: [(Method, u16, &str); 7] = [
        (Method::POST, 409, "AlreadyExists"),
        (Method::PATCH, 409, "Conflict"),
        (Method::POST, 422, "Invalid"),
        (Method::GET, 429, "TooManyRequests"),
        (Method::GET, 500, "InternalError"),
        (Method::PATCH, 503, "ServiceUnavailable"),
        (Method::DELETE, 504, "Timeout"),
    ];
    for (n, (method, status, reason)) in cases.into_iter().enumerate() {
        let times = 2;
        let path = "/configmaps";
        w.proxy.inject(Fault {
            method: Some(method.clone()),
            path_contains: path.to_owned(),
            status,
            times,
        });
        let before = w.proxy.seen(Some(method.clone()), path);
        let name = format!("new-{n}");
        let attempt = async || -> kube::Result<()> {
            if method == Method::POST {
                api.create(&pp, &config_map(&name, "1")).await.map(drop)
            } else if method == Method::PATCH {
                let patch = merge(&n.to_string());
                api.patch("cm", &PatchParams::default(), &patch)
                    .await
                    .map(drop)
            } else if method == Method::DELETE {
                api.delete(&name, &DeleteParams::default()).await.map(drop)
            } else {
                api.list(&ListParams::default()).await.map(drop)
            }
        };
        for _ in 0..times {
            let result = attempt().await;
            if let Err(kube::Error::Api(s)) = &result
                && status == 429
            {
                assert_eq!(s.details.as_ref().map(|d| d.retry_after_seconds), Some(1));
            }
            expect_api_error(result, status, reason);
        }
        // Used up: the next one reaches the apiserver (a DELETE of a ConfigMap created just now).
        if method == Method::DELETE {
            api.create(&pp, &config_map(&name, "1")).await.unwrap();
        }
        attempt().await.unwrap();
        assert_eq!(
            w.proxy.seen(Some(method), path),
            before + u64::from(times) + 1
        );
    }
    // Nothing faulted was forwarded: the two refused creates per POST case left no object behind.
    let names: Vec<String> = w
        .direct
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .collect();
    assert_eq!(names, ["cm", "new-0", "new-2"]);
}

#[tokio::test]
async fn faults_apply_in_order_and_only_where_they_match() {
    let Some(w) = World::start("fault-proxy-order").await else {
        return;
    };
    let client = w.no_retry().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &w.ctx.namespace);
    let fault = |method: Option<Method>, path: &str, status| Fault {
        method,
        path_contains: path.to_owned(),
        status,
        times: 1,
    };
    w.proxy.inject(fault(None, "/configmaps", 500));
    w.proxy.inject(fault(Some(Method::GET), "/configmaps", 503));
    w.proxy.inject(fault(Some(Method::GET), "/secrets", 403));
    let lp = ListParams::default();
    expect_api_error(api.list(&lp).await, 500, "InternalError");
    expect_api_error(api.list(&lp).await, 503, "ServiceUnavailable");
    api.list(&lp).await.unwrap();
    // The secrets fault is still queued until cleared.
    w.proxy.clear_faults();
    let secrets: Api<Secret> = Api::namespaced(client, &w.ctx.namespace);
    secrets.list(&lp).await.unwrap();
}

#[tokio::test]
async fn a_default_client_retries_429_and_503_by_itself() {
    let Some(w) = World::start("fault-proxy-retry").await else {
        return;
    };
    // What the agent's client (kube defaults) does: the retries hide these from the caller.
    for (status, times) in [(429, 1), (503, 2)] {
        w.proxy.inject(Fault {
            method: Some(Method::GET),
            path_contains: "/configmaps".to_owned(),
            status,
            times,
        });
        let before = w.proxy.seen(Some(Method::GET), "/configmaps");
        w.via_proxy.list(&ListParams::default()).await.unwrap();
        let seen = w.proxy.seen(Some(Method::GET), "/configmaps");
        assert_eq!(seen, before + u64::from(times) + 1);
    }
}
