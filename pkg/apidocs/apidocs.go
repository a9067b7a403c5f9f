// Package apidocs holds the OpenAPI document of Vigil's REST API,
// generated from the protobuf contracts by `make generate`.
package apidocs

import _ "embed"

// OpenAPI is the OpenAPI v2 document of the REST API.
//
//go:embed vigil.swagger.json
var OpenAPI []byte
