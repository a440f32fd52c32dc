"""Runs clearml-agent's k8s glue the way its `examples/k8s_glue_example.py` does: a `K8sIntegration` built from the
command line, then `k8s_daemon(queues)` in the foreground until killed. Configuration comes from the environment
(CLEARML_API_HOST and keys, KUBECONFIG for kubectl, CLEARML_WORKER_ID), as in the glue's container."""

import argparse

from clearml_agent.glue.k8s import K8sIntegration


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--queue", required=True, help="comma-separated queue names")
    parser.add_argument("--k8s-pending-queue-name", required=True)
    parser.add_argument("--template-yaml", required=True)
    parser.add_argument("--namespace", required=True)
    args = parser.parse_args()
    glue = K8sIntegration(
        k8s_pending_queue_name=args.k8s_pending_queue_name,
        template_yaml=args.template_yaml,
        namespace=args.namespace,
        debug=True,
    )
    queues = [q.strip() for q in args.queue.split(",") if q.strip()]
    glue.k8s_daemon(queues, use_owner_token=False, create_queue=False)


if __name__ == "__main__":
    main()
