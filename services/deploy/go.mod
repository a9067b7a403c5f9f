module github.com/vigil-ops/vigil/services/deploy

go 1.26.0

replace github.com/vigil-ops/vigil/pkg => ../../pkg
