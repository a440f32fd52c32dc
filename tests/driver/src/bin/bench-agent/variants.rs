//! `bench-agent --pod-variants`: what each part of the chain's pod costs the control plane. The warm-up burst's
//! pods (the default chain's) created by the plain loop as they are and with one part of the chain's changes taken
//! away at a time, down to the pod `--no-policies` submits, each variant on a control plane of its own, the variants
//! taking turns in chunks like a pair's sides.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use driver::bench::median_index;
use k8s_openapi::api::core::v1::{Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::sides::{PlainSide, Setup, Side, finish_all, run_interleaved};

/// The chain's provenance annotation (the agent's `clearml.ai/policies`).
const PROVENANCE: &str = "clearml.ai/policies";
/// The labels team-labels adds in the bench's values.
const TEAM_LABELS: [&str; 2] = ["clearml.ai/user", "clearml.ai/project"];

/// A variant's name and how it changes a chain pod.
type Variant = (&'static str, fn(&mut Pod));

fn without_provenance(pod: &mut Pod) {
    if let Some(a) = pod.metadata.annotations.as_mut() {
        a.remove(PROVENANCE);
    }
}

fn without_team_labels(pod: &mut Pod) {
    if let Some(labels) = pod.metadata.labels.as_mut() {
        for label in TEAM_LABELS {
            labels.remove(label);
        }
    }
}

fn with_base_resources(pod: &mut Pod) {
    for c in pod.spec.iter_mut().flat_map(|s| s.containers.iter_mut()) {
        c.resources = Some(ResourceRequirements {
            limits: Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity("1Gi".into()),
            )])),
            ..ResourceRequirements::default()
        });
    }
}

/// What `--no-policies` submits for the bench's values: the base pod (no annotation, no team labels, the base
/// template's label and resources).
fn as_base(pod: &mut Pod) {
    without_provenance(pod);
    without_team_labels(pod);
    with_base_resources(pod);
    if let Some(labels) = pod.metadata.labels.as_mut() {
        labels.insert("team".into(), "red".into());
    }
    if pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(BTreeMap::is_empty)
    {
        pod.metadata.annotations = None;
    }
}

const VARIANTS: [Variant; 5] = [
    ("the chain's pod", |_| {}),
    ("without the provenance annotation", without_provenance),
    ("without the two team labels", without_team_labels),
    ("with the base pod's resources", with_base_resources),
    ("the base pod (`--no-policies`)", as_base),
];

/// Run `pairs` rounds of every variant; a report section.
pub async fn run(
    setup: &Setup,
    chain_pods: &[Pod],
    pairs: usize,
    chunks: usize,
) -> anyhow::Result<String> {
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
    let mut cpu: Vec<Vec<String>> = vec![Vec::new(); VARIANTS.len()];
    for pair in 0..pairs.max(1) {
        let mut sides = Vec::new();
        for (i, (_, change)) in VARIANTS.iter().enumerate() {
            let pods: Vec<Pod> = chain_pods
                .iter()
                .map(|p| {
                    let mut p = p.clone();
                    change(&mut p);
                    p
                })
                .collect();
            sides.push(Side::Plain(Box::new(
                PlainSide::start(setup, &format!("variant-{i}-{pair}"), &pods).await?,
            )));
        }
        run_interleaved(&mut sides, pair, setup.tasks, chunks).await?;
        let (_, plains) = finish_all(sides).await?;
        for (i, plain) in plains.into_iter().enumerate() {
            rates[i].push(plain.rate);
            cpu[i].push(plain.machine_cpu);
        }
    }
    let mut out = format!(
        "\nThe chain's pod, part by part ({pairs} rounds, {chunks} chunks each, plain loop, pods/s; slower than the \
         base pod in the same round):\n"
    );
    let base = VARIANTS.len() - 1;
    for (i, (name, _)) in VARIANTS.iter().enumerate() {
        let slower: Vec<f64> = rates[i]
            .iter()
            .zip(&rates[base])
            .map(|(r, b)| 1.0 - r / b)
            .collect();
        let m = median_index(&slower);
        let each: Vec<String> = rates[i]
            .iter()
            .zip(&slower)
            .map(|(r, s)| format!("{r:.0} ({:.1}%)", 100.0 * s))
            .collect();
        let _ = writeln!(
            out,
            "- {name}: {}; median {:.1}%; CPU per pod in that round: {}",
            each.join(", "),
            100.0 * slower.get(m).copied().unwrap_or_default(),
            cpu[i].get(m).map_or("-", String::as_str)
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain's pod, taken apart down to the base pod the bench's values give without policies.
    #[test]
    fn the_base_variant_is_the_base_pod() {
        let chain: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "clearml-id-1",
                         "annotations": {PROVENANCE: "gpu-sizing@sha256:00"},
                         "labels": {"team": "team-3", "clearml.ai/user": "u", "clearml.ai/project": "p",
                                    "clearml-task-id": "1"}},
            "spec": {"containers": [{"name": "clearml-task", "image": "i",
                                     "resources": {"limits": {"memory": "16Gi", "nvidia.com/gpu": "1"},
                                                   "requests": {"cpu": "4"}}}]}
        }))
        .unwrap();
        let mut base = chain.clone();
        as_base(&mut base);
        let base = serde_json::to_value(&base).unwrap();
        assert_eq!(base["metadata"].get("annotations"), None);
        assert_eq!(
            base["metadata"]["labels"],
            serde_json::json!({"team": "red", "clearml-task-id": "1"})
        );
        assert_eq!(
            base["spec"]["containers"][0]["resources"],
            serde_json::json!({"limits": {"memory": "1Gi"}})
        );
        let mut unlabelled = chain;
        without_team_labels(&mut unlabelled);
        assert_eq!(unlabelled.metadata.labels.unwrap().len(), 2);
        assert_eq!(VARIANTS.len(), 5);
    }
}
