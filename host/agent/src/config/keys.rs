//! Every key of the values shape, per map: the ones the agent reads and the ones it accepts and ignores.
//!
//! Ignored keys configure the chart's own objects (the agent's Deployment, image, RBAC, Services) or Enterprise
//! features this agent does not implement. They are accepted so an existing `clearml-agent-values.override.yaml`
//! loads unchanged, and named in one debug line. Sources: the OSS `clearml-agent` chart's `values.yaml`
//! (clearml-helm-charts 747c018), the Enterprise docs (clearml-docs `docs/clearml_agent/*.md`,
//! `enterprise_deploy/*.md`, helm release notes 6.9-6.14) and the renamed ("Klique") chart; see
//! shared/reference/clearml-glue.md (c) and (g).

use super::walk::Keys;

/// The top level of the values file.
pub(super) const ROOT: Keys = Keys {
    known: &[
        "clearml",
        "controlPlane",
        "agentk8sglue",
        "orchestratork8sglue",
    ],
    ignored: &[
        // chart plumbing: image registry, pull secret, release names
        "global",
        "imageCredentials",
        "nameOverride",
        "fullnameOverride",
        // session Services of the chart (ports mode) and the OSS 5.3.4 tcp proxy
        "sessions",
        "tcpProxy",
        // Enterprise: CA certificates mounted into the agent (and optionally task pods)
        "customCertificates",
    ],
};

/// `clearml.*`: the credentials.
pub(super) const CLEARML: Keys = Keys {
    known: &["agentk8sglueKey", "agentk8sglueSecret"],
    // An existing Secret is the chart's business: mounted as env, it reaches the agent as CLEARML_API_*_KEY.
    ignored: &[
        "existingAgentk8sglueSecret",
        "existingClearmlConfigSecret",
        "clearmlConfig",
    ],
};

/// `controlPlane.*`: the renamed chart's credentials.
pub(super) const CONTROL_PLANE: Keys = Keys {
    known: &["apiKey", "apiSecret"],
    ignored: &[],
};

/// `agentk8sglue.*` (or `orchestratork8sglue.*`).
pub(super) const GLUE: Keys = Keys {
    known: &[
        "apiServerUrlReference",
        "fileServerUrlReference",
        "webServerUrlReference",
        "createQueues",
        "dashboardReportMaxGpu",
        "defaultContainerImage",
        "basePodTemplate",
        "queues",
        "queuePollFrequencySeconds",
        "statusReportFrequencySeconds",
        "completedPodDeletionDelayMinutes",
        "maxPods",
        "plugins",
        "taskWatchdog",
    ],
    ignored: &[
        // the agent's own Deployment, Pod and ServiceAccount (not the task pods)
        "image",
        "replicaCount",
        "resources",
        "initContainers",
        "labels",
        "annotations",
        "podAnnotations",
        "extraEnvs",
        "podSecurityContext",
        "containerSecurityContext",
        "nodeSelector",
        "tolerations",
        "affinity",
        "volumes",
        "volumeMounts",
        "fileMounts",
        "extraVolumes",
        "extraVolumeMounts",
        "imagePullPolicy",
        "serviceAccountName",
        "serviceAccountAnnotations",
        "serviceExistingAccountName",
        "serviceAccountClusterAccess",
        "additionalRoleBindings",
        "additionalClusterRoleBindings",
        "clearmlcheckCertificate",
        "debugMode",
        // OSS chart: one queue by name (the Enterprise shape is `queues`)
        "queue",
        "createQueueIfNotExists",
        // Enterprise features not implemented here
        "airGappedSupport",
        "appsQueue",
        "multiNode",
        "monitoredResources",
        "orchestrationDashboard",
        "workerIdOverride",
        "taskWorkerIdOverride",
        "serverTasks",
        "bootstrap",
        "customBashScript",
        "containerCustomBashScript",
        "customCertificates",
    ],
};

/// `queues.<name>.*`.
pub(super) const QUEUE: Keys = Keys {
    known: &["templateOverrides", "queueSettings", "policies"],
    ignored: &[],
};

/// `queues.<name>.queueSettings.*`.
pub(super) const QUEUE_SETTINGS: Keys = Keys {
    known: &["maxPods", "defaultImage", "useImageEntrypoint"],
    // Enterprise: worker ids per task and multi-node jobs, not implemented here.
    ignored: &["customWorkerIdTemplate", "multiNode"],
};

/// One `queues.<name>.policies[i]` entry (extension).
pub(super) const POLICY: Keys = Keys {
    known: &["plugin", "config"],
    ignored: &[],
};

/// `taskWatchdog.*` (extension): tasks ClearML stops hearing from while their pod runs.
pub(super) const TASK_WATCHDOG: Keys = Keys {
    known: &["noUpdateMinutes", "failTask"],
    ignored: &[],
};

/// One `plugins.<name>` entry (extension).
pub(super) const PLUGIN: Keys = Keys {
    known: &["file", "sha256"],
    ignored: &[],
};

/// The chart's `fileMounts` inside a template needs a Secret next to the pod, which a pod template cannot create.
/// The OSS chart's defaults carry `fileMounts: []`, so an empty one is accepted (and ignored); a non-empty one is
/// an error rather than a silently missing file.
pub(super) const TEMPLATE_FILE_MOUNTS: &str = "fileMounts";
