//! An owned control plane: clients work, and dropping it stops exactly its processes and removes its directory.

use std::path::Path;

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, api::ListParams};

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn owned_control_plane_starts_serves_and_stops_on_drop() {
    let Some(env) = kube_testenv::start_owned("lifecycle").await else {
        return;
    };
    let (etcd, apiserver) = env.pids();
    let dir = env.dir().to_path_buf();
    assert!(alive(etcd) && alive(apiserver));
    assert!(env.kubeconfig_path().is_file());
    assert!(env.server().starts_with("https://127.0.0.1:"));

    // The admin client talks to it; the apiserver created its system namespaces itself.
    let client = env.client().await.unwrap();
    let version = client.apiserver_version().await.unwrap();
    let pinned = kube_testenv::bins::pinned("KUBE_VERSION").unwrap();
    assert_eq!(version.git_version, format!("v{pinned}"));
    let names: Vec<String> = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|ns| ns.metadata.name)
        .collect();
    assert!(names.iter().any(|n| n == "default"), "{names:?}");

    // A bad token is rejected (401), so auth is really on.
    let stranger = env.client_with_token("not-a-token").await.unwrap();
    match stranger.apiserver_version().await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 401, "{e:?}"),
        other => panic!("expected 401, got {other:?}"),
    }

    drop(env);
    // Drop kills and reaps both by pid, so they are gone at once, and the run directory with them.
    assert!(!alive(etcd) && !alive(apiserver));
    assert!(!dir.exists());
}
