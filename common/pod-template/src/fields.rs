//! The values shape: every key `basePodTemplate` / `templateOverrides` accepts, its JSON kind and where it lands.

/// Where a template field lands in the pod.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    Metadata(&'static str),
    Spec(&'static str),
    Container(&'static str),
}

/// The JSON shape a field must have; also drives normalisation (numbers to strings where Kubernetes wants strings).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// Map of string values (labels, annotations, nodeSelector); scalars are turned into strings.
    StringMap,
    /// `{limits, requests, claims}`; quantities given as YAML numbers (`nvidia.com/gpu: 1`) become strings.
    Resources,
    /// List of `{name, value|valueFrom}`; scalar values become strings.
    Env,
    /// List of objects that each have a string `name`.
    NamedList,
    /// Any list.
    List,
    /// Any object.
    Object,
    String,
    Bool,
    Integer,
}

/// One key of the values shape.
pub(crate) struct Field {
    pub(crate) key: &'static str,
    pub(crate) target: Target,
    pub(crate) kind: Kind,
}

const fn field(key: &'static str, target: Target, kind: Kind) -> Field {
    Field { key, target, kind }
}

/// The values shape: every key `basePodTemplate` / `templateOverrides` accepts, and where it goes. The chart's
/// `fileMounts` is not here: it needs a Secret next to the pod, which a pod template cannot create.
const FIELDS: &[Field] = &[
    field("labels", Target::Metadata("labels"), Kind::StringMap),
    field(
        "annotations",
        Target::Metadata("annotations"),
        Kind::StringMap,
    ),
    field(
        "nodeSelector",
        Target::Spec("nodeSelector"),
        Kind::StringMap,
    ),
    field("tolerations", Target::Spec("tolerations"), Kind::List),
    field("affinity", Target::Spec("affinity"), Kind::Object),
    field(
        "topologySpreadConstraints",
        Target::Spec("topologySpreadConstraints"),
        Kind::List,
    ),
    field(
        "initContainers",
        Target::Spec("initContainers"),
        Kind::NamedList,
    ),
    field("volumes", Target::Spec("volumes"), Kind::NamedList),
    field(
        "priorityClassName",
        Target::Spec("priorityClassName"),
        Kind::String,
    ),
    field(
        "podSecurityContext",
        Target::Spec("securityContext"),
        Kind::Object,
    ),
    field("schedulerName", Target::Spec("schedulerName"), Kind::String),
    field(
        "runtimeClassName",
        Target::Spec("runtimeClassName"),
        Kind::String,
    ),
    field("hostAliases", Target::Spec("hostAliases"), Kind::List),
    field(
        "imagePullSecrets",
        Target::Spec("imagePullSecrets"),
        Kind::NamedList,
    ),
    field(
        "serviceAccountName",
        Target::Spec("serviceAccountName"),
        Kind::String,
    ),
    field("hostNetwork", Target::Spec("hostNetwork"), Kind::Bool),
    field("hostPID", Target::Spec("hostPID"), Kind::Bool),
    field("hostIPC", Target::Spec("hostIPC"), Kind::Bool),
    field("dnsPolicy", Target::Spec("dnsPolicy"), Kind::String),
    field("dnsConfig", Target::Spec("dnsConfig"), Kind::Object),
    field(
        "enableServiceLinks",
        Target::Spec("enableServiceLinks"),
        Kind::Bool,
    ),
    field(
        "terminationGracePeriodSeconds",
        Target::Spec("terminationGracePeriodSeconds"),
        Kind::Integer,
    ),
    field(
        "activeDeadlineSeconds",
        Target::Spec("activeDeadlineSeconds"),
        Kind::Integer,
    ),
    field("resources", Target::Container("resources"), Kind::Resources),
    field("env", Target::Container("env"), Kind::Env),
    field("envFrom", Target::Container("envFrom"), Kind::List),
    field(
        "volumeMounts",
        Target::Container("volumeMounts"),
        Kind::List,
    ),
    field(
        "containerSecurityContext",
        Target::Container("securityContext"),
        Kind::Object,
    ),
    field(
        "imagePullPolicy",
        Target::Container("imagePullPolicy"),
        Kind::String,
    ),
    field("ports", Target::Container("ports"), Kind::List),
    field("workingDir", Target::Container("workingDir"), Kind::String),
];

pub(crate) const RESOURCE_KEYS: &[&str] = &["limits", "requests", "claims"];

pub(crate) fn lookup(key: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.key == key)
}

/// Every key a template accepts, in the order of the values shape.
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    FIELDS.iter().map(|f| f.key)
}
