// kube-apiserver for the clearml-k8s-agent test environment: the same entry point as upstream
// cmd/kube-apiserver/apiserver.go, built from the k8s.io/kubernetes module pinned in go.mod.
package main

import (
	"os"

	_ "time/tzdata" // upstream embeds tzdata too, so CronJob time zones validate without a system zoneinfo

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
