// Package chart checks the Helm chart (deploy/helm/vigil) and the Kustomize
// base (deploy/k8s) with the pinned helm and kubeconform of tools/ and
// against a real kube-apiserver (pkg/kubedev). It has no code of its own:
// everything is in its tests.
package chart
