// Queue policy in JavaScript: sets the pod's PriorityClass from the task's ClearML project.
//
// Built into a WebAssembly component with componentize-js (see README.md):
//   componentize-js policy.js -w ../../wit/0.1.0/queue-policy.wit -n queue-policy -o js-priority-policy.wasm -d http fetch-event
//
// Config (JSON; keys are checked, an unknown key is an error naming it):
//   rules:                      # first match wins; `*` in a pattern matches any run of characters
//     - { project: "Production/*", priorityClassName: ml-high }
//     - { project: "Research/*",   priorityClassName: ml-low }
//   default: ml-normal          # for tasks whose project matches no rule (absent: leave the pod as it is)
//   userSelectable: [ml-low]    # classes a user may pick with the tag `priority=<class>` (e.g. to yield)
import { log } from 'clearml:queue-policy/host@0.1.0';

const CONFIG_KEYS = ['rules', 'default', 'userSelectable'];
const RULE_KEYS = ['project', 'priorityClassName'];
const TAG_PREFIX = 'priority=';

// What the WIT `policy-error` variant looks like in JS; thrown, it becomes the function's `err` result.
class PolicyError extends Error {
  constructor(tag, message) {
    super(message);
    this.payload = { tag, val: message };
  }
}
const invalidConfig = (message) => new PolicyError('invalid-config', message);
const reject = (message) => new PolicyError('reject', message);

// A PriorityClass name is a DNS subdomain: lowercase letters, digits, '-' and '.', at most 253 characters.
function checkClassName(path, name) {
  if (typeof name !== 'string' || name.length === 0 || name.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) {
    throw invalidConfig(`${path}: ${JSON.stringify(name)} is not a PriorityClass name (lowercase letters, digits, '-', '.')`);
  }
}

// `Production/*` -> /^Production\/.*$/ : only `*` is special, everything else matches itself.
function globToRegExp(pattern) {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`);
}

export function parseConfig(text) {
  let raw;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw invalidConfig(`config is not valid JSON: ${err.message}`);
  }
  if (raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalidConfig('config: expected a map');
  for (const key of Object.keys(raw)) {
    if (!CONFIG_KEYS.includes(key)) throw invalidConfig(`config: unknown key \`${key}\` (known keys: ${CONFIG_KEYS.join(', ')})`);
  }
  const rules = raw.rules ?? [];
  if (!Array.isArray(rules)) throw invalidConfig('rules: expected a list of {project, priorityClassName}');
  const parsed = rules.map((rule, i) => {
    if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) throw invalidConfig(`rules[${i}]: expected a map`);
    for (const key of Object.keys(rule)) {
      if (!RULE_KEYS.includes(key)) throw invalidConfig(`rules[${i}]: unknown key \`${key}\` (known keys: ${RULE_KEYS.join(', ')})`);
    }
    if (typeof rule.project !== 'string' || rule.project.length === 0) throw invalidConfig(`rules[${i}].project: expected a project name or pattern`);
    checkClassName(`rules[${i}].priorityClassName`, rule.priorityClassName);
    return { project: rule.project, regexp: globToRegExp(rule.project), priorityClassName: rule.priorityClassName };
  });
  const fallback = raw.default ?? null;
  if (fallback !== null) checkClassName('default', fallback);
  const userSelectable = raw.userSelectable ?? [];
  if (!Array.isArray(userSelectable)) throw invalidConfig('userSelectable: expected a list of PriorityClass names');
  userSelectable.forEach((name, i) => checkClassName(`userSelectable[${i}]`, name));
  return { rules: parsed, fallback, userSelectable };
}

// The class for a task and why: a user-selected class (tag), else the first matching rule, else the default.
export function choose(task, config) {
  const tag = task.tags.find((t) => t.startsWith(TAG_PREFIX));
  if (tag !== undefined) {
    const wanted = tag.slice(TAG_PREFIX.length);
    if (!config.userSelectable.includes(wanted)) {
      const allowed = config.userSelectable.length ? config.userSelectable.join(', ') : 'none';
      throw reject(`tag \`${tag}\` asks for priority class \`${wanted}\`, but queue \`${task.queueName}\` lets users pick only: ${allowed}`);
    }
    return { name: wanted, why: `tag ${tag}` };
  }
  const project = task.project ?? '';
  const rule = config.rules.find((r) => r.regexp.test(project));
  if (rule) return { name: rule.priorityClassName, why: `project ${JSON.stringify(project)} matches ${JSON.stringify(rule.project)}` };
  if (config.fallback !== null) return { name: config.fallback, why: 'queue default' };
  return null;
}

export function transformPod(pod, task, config) {
  const chosen = choose(task, config);
  if (chosen === null) return { pod, message: 'no rule matched and no default: pod unchanged' };
  if (typeof pod.spec !== 'object' || pod.spec === null) throw new PolicyError('internal', 'the pod has no spec');
  pod.spec.priorityClassName = chosen.name;
  // The Priority admission plugin fills `priority` from the class; a stale number would make the pod invalid.
  delete pod.spec.priority;
  return { pod, message: `priorityClassName ${chosen.name} (${chosen.why})` };
}

// Bugs become `internal` errors with the message, instead of a trap that hides it.
function guarded(fn) {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PolicyError) throw err;
    throw new PolicyError('internal', `${err && err.name}: ${err && err.message}`);
  }
}

// The exported `clearml:queue-policy/policy` interface.
export const policy = {
  validateConfig(config) {
    guarded(() => parseConfig(config));
  },
  transform(pod, task, config) {
    return guarded(() => {
      const { pod: out, message } = transformPod(JSON.parse(pod), task, parseConfig(config));
      log('info', message);
      return JSON.stringify(out);
    });
  },
};
