module github.com/vigil-ops/vigil/services/analysis

go 1.26.0

replace github.com/vigil-ops/vigil/pkg => ../../pkg

require (
	github.com/stretchr/testify v1.12.1
	github.com/vigil-ops/vigil/pkg v0.0.0-00010101000000-000000000000
)

require (
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
