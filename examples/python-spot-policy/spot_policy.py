"""Spot / preemptible scheduling by task tag: the logic, in plain Python with no WebAssembly imports.

`app.py` adapts it to the `clearml:queue-policy@0.1.0` world; keeping the logic here means it can also be imported
and tried with a normal Python interpreter.

A task goes to spot (preemptible) capacity when it carries the `spotTag` tag (or the property
`k8s/capacity: spot`), or when the queue's `default` is `spot` and the task does not carry `onDemandTag`.
"""

import copy
import json

KNOWN_KEYS = ("default", "spotTag", "onDemandTag", "mode", "nodeSelector", "tolerations", "capacityLabel", "annotations")
DEFAULTS = {
    "default": "on-demand",
    "spotTag": "spot",
    "onDemandTag": "on-demand",
    "mode": "require",
    # GKE's spot node label and taint; EKS (eks.amazonaws.com/capacityType: SPOT) and AKS work the same way.
    "nodeSelector": {"cloud.google.com/gke-spot": "true"},
    "tolerations": [{"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
    "capacityLabel": None,
    "annotations": {},
}
CAPACITY_PROPERTY = "k8s/capacity"


class InvalidConfig(Exception):
    """The queue's config is wrong; the message names the key."""


class Rejected(Exception):
    """The task cannot run as asked; the message is shown to the ML user."""


def _string_map(config, key):
    value = config[key]
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidConfig(f"{key}: expected a map of strings, e.g. {{cloud.google.com/gke-spot: \"true\"}}")
    return value


def parse_config(text):
    """Parse and check the JSON config; `null` gives the defaults."""
    try:
        raw = json.loads(text)
    except ValueError as err:
        raise InvalidConfig(f"config is not valid JSON: {err}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidConfig("config: expected a map")
    for key in raw:
        if key not in KNOWN_KEYS:
            raise InvalidConfig(f"config: unknown key `{key}` (known keys: {', '.join(KNOWN_KEYS)})")
    config = dict(DEFAULTS)
    config.update({k: v for k, v in raw.items() if v is not None})
    if config["default"] not in ("spot", "on-demand"):
        raise InvalidConfig(f"default: expected `spot` or `on-demand`, found `{config['default']}`")
    if config["mode"] not in ("require", "prefer"):
        raise InvalidConfig(f"mode: expected `require` or `prefer`, found `{config['mode']}`")
    for key in ("spotTag", "onDemandTag"):
        if not isinstance(config[key], str) or not config[key]:
            raise InvalidConfig(f"{key}: expected a non-empty tag")
    _string_map(config, "nodeSelector")
    _string_map(config, "annotations")
    if not config["nodeSelector"]:
        raise InvalidConfig("nodeSelector: must name at least one label that spot nodes carry")
    tolerations = config["tolerations"]
    if not isinstance(tolerations, list) or not all(isinstance(t, dict) for t in tolerations):
        raise InvalidConfig("tolerations: expected a list of Kubernetes tolerations")
    label = config["capacityLabel"]
    if label is not None and (not isinstance(label, str) or not label or label.startswith("clearml-agent") or label == "clearml-task-id"):
        raise InvalidConfig("capacityLabel: expected a label key that is not one of the agent's")
    return config


def wants_spot(task_tags, properties, config):
    """True when the task should run on spot capacity, and why (for the log)."""
    capacity = dict(properties).get(CAPACITY_PROPERTY)
    if capacity is not None:
        if capacity not in ("spot", "on-demand"):
            raise Rejected(f"property `{CAPACITY_PROPERTY}` is `{capacity}`: set it to `spot` or `on-demand`")
        return capacity == "spot", f"property {CAPACITY_PROPERTY}={capacity}"
    if config["spotTag"] in task_tags and config["onDemandTag"] in task_tags:
        raise Rejected(f"the task has both tags `{config['spotTag']}` and `{config['onDemandTag']}`: keep one")
    if config["spotTag"] in task_tags:
        return True, f"tag {config['spotTag']}"
    if config["onDemandTag"] in task_tags:
        return False, f"tag {config['onDemandTag']}"
    return config["default"] == "spot", f"queue default {config['default']}"


def transform(pod, task_tags, properties, config):
    """Return `(new pod, log message)` for a pod (a dict), the task's tags and properties, and a parsed config."""
    pod = copy.deepcopy(pod)
    spot, why = wants_spot(task_tags, properties, config)
    metadata = pod.setdefault("metadata", {})
    if config["capacityLabel"]:
        metadata.setdefault("labels", {})[config["capacityLabel"]] = "spot" if spot else "on-demand"
    if not spot:
        return pod, f"on-demand ({why})"
    spec = pod.setdefault("spec", {})
    if config["mode"] == "require":
        spec.setdefault("nodeSelector", {}).update(config["nodeSelector"])
    else:
        node_affinity = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
        preferred = node_affinity.setdefault("preferredDuringSchedulingIgnoredDuringExecution", [])
        preferred.append({
            "weight": 100,
            "preference": {"matchExpressions": [
                {"key": key, "operator": "In", "values": [value]} for key, value in sorted(config["nodeSelector"].items())
            ]},
        })
    if config["tolerations"]:
        tolerations = spec.setdefault("tolerations", [])
        for toleration in config["tolerations"]:
            if toleration not in tolerations:
                tolerations.append(toleration)
    if config["annotations"]:
        metadata.setdefault("annotations", {}).update(config["annotations"])
    return pod, f"spot, {config['mode']}d ({why})"
