module github.com/vigil-ops/vigil/services/repair

go 1.26.0

replace github.com/vigil-ops/vigil/pkg => ../../pkg
